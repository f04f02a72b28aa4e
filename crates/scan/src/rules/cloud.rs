//! Cloud providers and infrastructure platforms.

use super::{ASSIGN, UUID, allowing, assigned, one_of, raw, token, with_entropy};
use crate::rule::Rule;

pub(super) fn rules() -> Vec<Rule> {
    vec![
        allowing(
            raw(
                "aws-access-token",
                "AWS access key id",
                r"(?-u:\b)((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})(?-u:\b)",
                &["akia", "asia", "abia", "acca", "a3t"],
            ),
            &["EXAMPLE$"],
        ),
        with_entropy(
            raw(
                "aws-secret-access-key",
                "AWS secret access key",
                &format!(
                    r#"(?i:aws)[0-9A-Za-z_. \t-]{{0,20}}?(?i:secret|private)[0-9A-Za-z_. \t-]{{0,30}}{ASSIGN}([A-Za-z0-9/+]{{40}})(?:[^\nA-Za-z0-9/+=]|(?m:$))"#
                ),
                &["aws"],
            ),
            4.0,
        ),
        token(
            "aws-mws-key",
            "Amazon Marketplace Web Service key",
            r"amzn\.mws\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            &["amzn.mws"],
        ),
        token(
            "aws-bedrock-api-key",
            "Amazon Bedrock long-term API key",
            r"ABSK[A-Za-z0-9+/]{109,269}={0,2}",
            &["absk"],
        ),
        token(
            "aws-bedrock-short-term-api-key",
            "Amazon Bedrock short-term API key (a presigned URL for bedrock.amazonaws.com)",
            r"bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/]{40,4000}={0,2}",
            &["bedrock-api-key-"],
        ),
        token(
            "gcp-api-key",
            "Google Cloud API key",
            r"AIza[0-9A-Za-z_-]{35}",
            &["aiza"],
        ),
        token(
            "gcp-oauth-client-secret",
            "Google OAuth client secret",
            r"GOCSPX-[0-9A-Za-z_-]{28}",
            &["gocspx-"],
        ),
        token(
            "gcp-oauth-access-token",
            "Google OAuth access token",
            r"ya29\.[0-9A-Za-z_-]{30,}",
            &["ya29."],
        ),
        raw(
            "gcp-service-account-key",
            "Google Cloud service-account key file (private_key_id)",
            r#""private_key_id"[ \t]*:[ \t]*"([a-f0-9]{40})""#,
            &["private_key_id"],
        ),
        raw(
            "azure-storage-account-key",
            "Azure storage account key",
            r"(?i:AccountKey)=([A-Za-z0-9+/]{86}==)",
            &["accountkey="],
        ),
        raw(
            "azure-sas-token",
            "Azure shared access signature",
            r#"(?-u:\b)sv=20[0-9]{2}-[0-9]{2}-[0-9]{2}&[^\n \t'"<>]{0,300}?sig=([A-Za-z0-9%+/]{40,}(?:%3D|=)?)"#,
            &["sv=20"],
        ),
        raw(
            "azure-ad-client-secret",
            "Azure AD (Entra ID) client secret",
            r#"(?:(?m:^)|[\\'"\x60 \t>=:(,)])([a-zA-Z0-9_~.]{3}[0-9]Q~[a-zA-Z0-9_~.-]{31,34})(?:(?m:$)|[\\'"\x60 \t<),])"#,
            &["q~"],
        ),
        raw(
            "azure-devops-pat",
            "Azure DevOps personal access token",
            r"(?-u:\b)([A-Za-z0-9]{52}JQQJ9[9DH][A-Za-z0-9][A-L][A-Za-z0-9]{16}AZDO[A-Za-z0-9]{4})(?-u:\b)",
            &["azdo"],
        ),
        raw(
            "azure-app-configuration-connection-string",
            "Azure App Configuration connection string",
            r"Endpoint=https://[a-z0-9-]+\.azconfig\.io;Id=[^\n;]+;Secret=([A-Za-z0-9+/]{43}=)",
            &["azconfig.io"],
        ),
        raw(
            "azure-shared-access-key",
            "Azure Service Bus / Event Hubs shared access key",
            r"(?i:SharedAccessKey)=([A-Za-z0-9+/]{43}=)",
            &["sharedaccesskey="],
        ),
        token(
            "digitalocean-pat",
            "DigitalOcean personal access token",
            r"dop_v1_[a-f0-9]{64}",
            &["dop_v1_"],
        ),
        token(
            "digitalocean-access-token",
            "DigitalOcean OAuth access token",
            r"doo_v1_[a-f0-9]{64}",
            &["doo_v1_"],
        ),
        token(
            "digitalocean-refresh-token",
            "DigitalOcean OAuth refresh token",
            r"dor_v1_[a-f0-9]{64}",
            &["dor_v1_"],
        ),
        token(
            "alibaba-access-key-id",
            "Alibaba Cloud AccessKey id",
            r"LTAI[a-zA-Z0-9]{20}",
            &["ltai"],
        ),
        assigned(
            "alibaba-secret-key",
            "Alibaba Cloud AccessKey secret",
            "alibaba",
            "[a-zA-Z0-9]{30}",
        ),
        assigned("heroku-api-key", "Heroku API key", "heroku", UUID),
        token(
            "heroku-api-key-v2",
            "Heroku API key (HRKU format)",
            r"HRKU-AA[0-9a-zA-Z_-]{58}",
            &["hrku-aa"],
        ),
        assigned(
            "cloudflare-api-key",
            "Cloudflare API token",
            "cloudflare",
            "[A-Za-z0-9_-]{40}",
        ),
        assigned(
            "cloudflare-global-api-key",
            "Cloudflare global API key",
            "cloudflare",
            "[a-f0-9]{37}",
        ),
        token(
            "cloudflare-origin-ca-key",
            "Cloudflare Origin CA key",
            r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}",
            &["v1.0-"],
        ),
        assigned(
            "linode-api-token",
            "Linode API token",
            "linode",
            "[a-f0-9]{64}",
        ),
        assigned(
            "scaleway-secret-key",
            "Scaleway secret key",
            "scaleway|scw_secret",
            UUID,
        ),
        assigned("vultr-api-key", "Vultr API key", "vultr", "[A-Z0-9]{36}"),
        assigned(
            "hetzner-cloud-token",
            "Hetzner Cloud API token",
            "hcloud|hetzner",
            "[A-Za-z0-9]{64}",
        ),
        assigned(
            "fastly-api-token",
            "Fastly API token",
            "fastly",
            "[A-Za-z0-9_=-]{32}",
        ),
        assigned(
            "netlify-access-token",
            "Netlify access token",
            "netlify",
            "[A-Za-z0-9_=-]{40,46}",
        ),
        assigned(
            "vercel-token",
            "Vercel access token",
            "vercel",
            "[A-Za-z0-9]{24}",
        ),
        token(
            "flyio-access-token",
            "Fly.io access token or macaroon",
            r"fo1_[A-Za-z0-9_-]{43}|fm1[ar]_[A-Za-z0-9+/]{100,}={0,3}|fm2_[A-Za-z0-9+/]{100,}={0,3}",
            &["fo1_", "fm1a_", "fm1r_", "fm2_"],
        ),
        token(
            "scalingo-api-token",
            "Scalingo API token",
            r"tk-us-[A-Za-z0-9_-]{48}",
            &["tk-us-"],
        ),
        with_entropy(
            token(
                "clickhouse-cloud-api-secret-key",
                "ClickHouse Cloud API secret key",
                r"4b1d[A-Za-z0-9]{38}",
                &["4b1d"],
            ),
            3.0,
        ),
        token(
            "doppler-api-token",
            "Doppler personal token",
            r"dp\.pt\.[A-Za-z0-9]{43}",
            &["dp.pt."],
        ),
        token(
            "doppler-service-token",
            "Doppler service token",
            r"dp\.st\.(?:[a-z0-9_-]{2,35}\.)?[A-Za-z0-9]{40,44}",
            &["dp.st."],
        ),
        token(
            "pulumi-api-token",
            "Pulumi access token",
            r"pul-[a-f0-9]{40}",
            &["pul-"],
        ),
        token(
            "hashicorp-tf-api-token",
            "Terraform Cloud / Enterprise API token",
            r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}",
            &["atlasv1"],
        ),
        token(
            "openshift-user-token",
            "OpenShift user token",
            r"sha256~[A-Za-z0-9_-]{43}",
            &["sha256~"],
        ),
        raw(
            "infracost-api-token",
            "Infracost API token",
            // Not after a dot: `favicon.ico-…` is a file name.
            r"(?:(?m:^)|[^\n0-9A-Za-z_.-])(ico-[A-Za-z0-9]{32})(?:[^\n0-9A-Za-z_-]|(?m:$))",
            &["ico-"],
        ),
        assigned(
            "ibm-cloud-api-key",
            "IBM Cloud API key",
            "ibm",
            "[A-Za-z0-9_-]{44}",
        ),
        token(
            "databricks-api-token",
            "Databricks API token",
            r"dapi[a-f0-9]{32}(?:-[0-9])?",
            &["dapi"],
        ),
        token(
            "supabase-access-token",
            "Supabase personal access token",
            r"sbp_[a-f0-9]{40}",
            &["sbp_"],
        ),
        token(
            "planetscale-password",
            "PlanetScale database password",
            r"pscale_pw_[A-Za-z0-9_.=-]{32,64}",
            &["pscale_pw_"],
        ),
        token(
            "planetscale-api-token",
            "PlanetScale API token",
            r"pscale_tkn_[A-Za-z0-9_.=-]{32,64}",
            &["pscale_tkn_"],
        ),
        token(
            "planetscale-oauth-token",
            "PlanetScale OAuth token",
            r"pscale_oauth_[A-Za-z0-9_.=-]{32,64}",
            &["pscale_oauth_"],
        ),
        token(
            "render-api-key",
            "Render API key",
            r"rnd_[A-Za-z0-9]{32}",
            &["rnd_"],
        ),
        token(
            "artifactory-reference-token",
            "JFrog Artifactory reference token",
            r"cmVmd[A-Za-z0-9]{59}",
            &["cmvmd"],
        ),
        with_entropy(
            one_of(
                "jfrog-api-key",
                "JFrog API key",
                &[
                    token("", "", r"AKCp[A-Za-z0-9]{69}", &["akcp"]),
                    assigned("", "", "jfrog|artifactory|bintray|xray", "[A-Za-z0-9]{73}"),
                ],
            ),
            3.0,
        ),
        assigned(
            "jfrog-identity-token",
            "JFrog identity token",
            "jfrog|artifactory|bintray|xray",
            "[A-Za-z0-9]{64}",
        ),
        assigned(
            "confluent-api-secret",
            "Confluent Cloud API secret",
            "confluent",
            "[A-Za-z0-9+/]{64}",
        ),
        assigned(
            "confluent-access-token",
            "Confluent Cloud API key",
            "confluent",
            "[A-Za-z0-9]{16}",
        ),
    ]
}
