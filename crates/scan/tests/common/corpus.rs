//! Generated test secrets: one true positive and one near miss per built-in rule, expanded from
//! documented key formats at run time, so the repository holds no key-shaped strings.
//!
//! Template syntax: `{CLASS:N}` is N random characters of a class, `{uuid}` a random UUID,
//! `{ward}` a Ward token with a valid checksum and `{wardbad}` one with a wrong checksum.

#![allow(dead_code, clippy::expect_used)]

use ward_api::token_format;

/// (rule id, true positive, near miss).
#[rustfmt::skip]
pub(crate) const FIXTURES: &[(&str, &str, &str)] = &[
    // Cloud
    ("aws-access-token", "aws_access_key_id = AKIA{B:16}", "aws_access_key_id = AKIA{B:12}"),
    ("aws-secret-access-key", "aws_secret_access_key = \"{b:40}\"", "aws_secret_access_key = \"{b:30}\""),
    ("aws-mws-key", "mws = \"amzn.mws.{uuid}\"", "mws = \"amzn.mws.{h:8}-{h:4}\""),
    ("aws-bedrock-api-key", "AWS_BEARER_TOKEN_BEDROCK=ABSK{b:130}", "AWS_BEARER_TOKEN_BEDROCK=ABSK{b:60}"),
    ("gcp-api-key", "key: AIza{w:35}", "key: AIza{w:20}"),
    ("gcp-oauth-client-secret", "client_secret: GOCSPX-{w:28}", "client_secret: GOCSPX-{w:16}"),
    ("gcp-oauth-access-token", "Authorization: Bearer ya29.{w:80}", "Authorization: Bearer ya29.{w:12}"),
    ("gcp-service-account-key", "  \"private_key_id\": \"{h:40}\",", "  \"private_key_id\": \"{h:16}\","),
    ("azure-storage-account-key", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={b:86}==;EndpointSuffix=core.windows.net", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={b:40}==;"),
    ("azure-sas-token", "https://acct.blob.core.windows.net/c?sv=2022-11-02&ss=b&sp=r&se=2030-01-01T00:00:00Z&sig={a:43}%3D", "https://acct.blob.core.windows.net/c?sv=2022-11-02&sp=r&sig={a:12}"),
    ("azure-ad-client-secret", "client_secret = \"{a:3}8Q~{a:34}\"", "client_secret = \"{a:3}8Q~{a:12}\""),
    ("azure-devops-pat", "pat = {a:52}JQQJ99{a:1}A{a:16}AZDO{a:4}", "pat = {a:52}JQQJ99{a:1}Z{a:16}AZDO{a:4}"),
    ("azure-app-configuration-connection-string", "Endpoint=https://cfg.azconfig.io;Id=ab12-l0-s0:{a:20};Secret={b:43}=", "Endpoint=https://cfg.azconfig.io;Id=ab12-l0-s0:{a:20};Secret={b:10}="),
    ("azure-shared-access-key", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={b:43}=", "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={b:20}="),
    ("digitalocean-pat", "DO_TOKEN=dop_v1_{h:64}", "DO_TOKEN=dop_v1_{h:40}"),
    ("digitalocean-access-token", "doo_v1_{h:64}", "doo_v1_{h:40}"),
    ("digitalocean-refresh-token", "dor_v1_{h:64}", "dor_v1_{h:40}"),
    ("alibaba-access-key-id", "access_key_id: LTAI{a:20}", "access_key_id: LTAI{a:12}"),
    ("alibaba-secret-key", "alibaba_secret = \"{a:30}\"", "alibaba_secret = \"{a:12}\""),
    ("heroku-api-key", "HEROKU_API_KEY={uuid}", "HEROKU_API_KEY={h:32}"),
    ("heroku-api-key-v2", "HRKU-AA{w:58}", "HRKU-AA{w:20}"),
    ("cloudflare-api-key", "CLOUDFLARE_API_TOKEN={w:40}", "CLOUDFLARE_API_TOKEN={w:20}"),
    ("cloudflare-global-api-key", "cloudflare_global_key: {h:37}", "cloudflare_global_key: {h:36}"),
    ("cloudflare-origin-ca-key", "v1.0-{h:24}-{h:146}", "v1.0-{h:24}-{h:40}"),
    ("linode-api-token", "LINODE_TOKEN={h:64}", "LINODE_TOKEN={h:32}"),
    ("scaleway-secret-key", "SCW_SECRET_KEY={uuid}", "SCW_SECRET_KEY={h:20}"),
    ("vultr-api-key", "VULTR_API_KEY={U:36}", "VULTR_API_KEY={U:20}"),
    ("hetzner-cloud-token", "HCLOUD_TOKEN={a:64}", "HCLOUD_TOKEN={a:30}"),
    ("fastly-api-token", "FASTLY_API_TOKEN={w:32}", "FASTLY_API_TOKEN={w:16}"),
    ("netlify-access-token", "NETLIFY_AUTH_TOKEN={w:43}", "NETLIFY_AUTH_TOKEN={w:20}"),
    ("vercel-token", "VERCEL_TOKEN={a:24}", "VERCEL_TOKEN={a:12}"),
    ("flyio-access-token", "FLY_API_TOKEN=fo1_{w:43}", "FLY_API_TOKEN=fo1_{w:20}"),
    ("doppler-api-token", "dp.pt.{a:43}", "dp.pt.{a:20}"),
    ("doppler-service-token", "dp.st.prd.{a:40}", "dp.st.{a:12}"),
    ("pulumi-api-token", "PULUMI_ACCESS_TOKEN=pul-{h:40}", "PULUMI_ACCESS_TOKEN=pul-{h:20}"),
    ("hashicorp-tf-api-token", "token = \"{a:14}.atlasv1.{w:65}\"", "token = \"{a:14}.atlasv1.{w:30}\""),
    ("openshift-user-token", "sha256~{w:43}", "sha256~{w:20}"),
    ("infracost-api-token", "ico-{a:32}", "ico-{a:16}"),
    ("ibm-cloud-api-key", "IBM_CLOUD_API_KEY={w:44}", "IBM_CLOUD_API_KEY={w:20}"),
    ("databricks-api-token", "dapi{h:32}", "dapi{h:20}"),
    ("supabase-access-token", "sbp_{h:40}", "sbp_{h:20}"),
    ("planetscale-password", "pscale_pw_{w:43}", "pscale_pw_{w:16}"),
    ("planetscale-api-token", "pscale_tkn_{w:43}", "pscale_tkn_{w:16}"),
    ("planetscale-oauth-token", "pscale_oauth_{w:43}", "pscale_oauth_{w:16}"),
    ("render-api-key", "rnd_{a:32}", "rnd_{a:16}"),
    ("artifactory-reference-token", "cmVmdGtu{a:56}", "cmVmdGtu{a:30}"),
    ("jfrog-api-key", "AKCp{a:69}", "AKCp{a:40}"),
    ("jfrog-identity-token", "JFROG_ACCESS_TOKEN={a:64}", "JFROG_ACCESS_TOKEN={a:30}"),
    ("confluent-api-secret", "confluent_secret = \"{b:64}\"", "confluent_secret = \"{b:30}\""),
    // Source hosting, CI, registries, tooling
    ("github-pat", "GITHUB_TOKEN=ghp_{a:36}", "GITHUB_TOKEN=ghp_{a:30}"),
    ("github-oauth", "gho_{a:36}", "gho_{a:30}"),
    ("github-app-token", "ghs_{a:36}", "ghs_{a:30}"),
    ("github-refresh-token", "ghr_{a:76}", "ghr_{a:20}"),
    ("github-fine-grained-pat", "github_pat_{a:22}_{a:59}", "github_pat_{a:22}"),
    ("gitlab-pat", "glpat-{w:20}", "glpat-{w:12}"),
    ("gitlab-ptt", "glptt-{h:40}", "glptt-{h:20}"),
    ("gitlab-rrt", "GR1348941{w:20}", "GR1348941{w:10}"),
    ("gitlab-deploy-token", "gldt-{w:20}", "gldt-{w:10}"),
    ("gitlab-feed-token", "glft-{w:20}", "glft-{w:10}"),
    ("gitlab-incoming-mail-token", "glimt-{w:25}", "glimt-{w:12}"),
    ("gitlab-kubernetes-agent-token", "glagent-{w:50}", "glagent-{w:20}"),
    ("gitlab-oauth-app-secret", "gloas-{w:64}", "gloas-{w:20}"),
    ("gitlab-scim-token", "glsoat-{w:20}", "glsoat-{w:10}"),
    ("gitlab-cicd-job-token", "glcbt-{a:3}_{w:20}", "glcbt-{a:3}_{w:10}"),
    ("gitlab-runner-token", "glrt-{w:20}", "glrt-{w:10}"),
    ("gitlab-feature-flag-token", "glffct-{w:20}", "glffct-{w:10}"),
    ("gitlab-session-cookie", "Cookie: _gitlab_session={l:32}", "Cookie: _gitlab_session={l:20}"),
    ("bitbucket-client-id", "BITBUCKET_CLIENT_ID={a:32}", "BITBUCKET_CLIENT_ID={a:16}"),
    ("bitbucket-client-secret", "BITBUCKET_CLIENT_SECRET={w:64}", "BITBUCKET_CLIENT_SECRET={w:30}"),
    ("bitbucket-app-password", "ATBB{a:32}", "ATBB{a:16}"),
    ("atlassian-api-token", "ATATT3{w:186}", "ATATT3{w:60}"),
    ("atlassian-legacy-api-token", "JIRA_API_TOKEN={a:24}", "JIRA_API_TOKEN={a:12}"),
    ("circleci-personal-token", "CCIPAT_{a:22}_{h:40}", "CCIPAT_{a:22}_{h:20}"),
    ("circleci-api-token", "CIRCLECI_TOKEN={h:40}", "CIRCLECI_TOKEN={h:20}"),
    ("travisci-access-token", "TRAVIS_TOKEN={a:22}", "TRAVIS_TOKEN={a:10}"),
    ("droneci-access-token", "DRONE_TOKEN={a:32}", "DRONE_TOKEN={a:16}"),
    ("buildkite-api-token", "bkua_{h:40}", "bkua_{h:20}"),
    ("jenkins-api-token", "JENKINS_API_TOKEN=11{h:32}", "JENKINS_API_TOKEN=11{h:16}"),
    ("npm-access-token", "//registry.npmjs.org/:_authToken=npm_{a:36}", "//registry.npmjs.org/:_authToken=npm_{a:20}"),
    ("pypi-upload-token", "token: pypi-AgEIcHlwaS5vcmc{w:70}", "token: pypi-AgEIcHlwaS5vcmc{w:20}"),
    ("rubygems-api-token", "rubygems_{h:48}", "rubygems_{h:24}"),
    ("nuget-api-key", "oy2{l:43}", "oy2{l:20}"),
    ("dockerhub-pat", "dckr_pat_{w:27}", "dckr_pat_{w:12}"),
    ("sonarqube-token", "squ_{h:40}", "squ_{h:20}"),
    ("codecov-access-token", "CODECOV_TOKEN={uuid}", "CODECOV_TOKEN={h:20}"),
    ("snyk-api-token", "SNYK_TOKEN={uuid}", "SNYK_TOKEN={h:20}"),
    ("octopus-deploy-api-key", "API-{U:26}", "API-{U:12}"),
    ("harness-api-key", "pat.{w:22}.{a:24}.{a:20}", "pat.{w:22}.{a:10}"),
    ("sentry-org-token", "sntrys_eyJpYXQiO{b:80}", "sntrys_eyJpYXQiO{b:20}"),
    ("sentry-user-token", "sntryu_{h:64}", "sntryu_{h:30}"),
    ("sentry-access-token", "SENTRY_AUTH_TOKEN={h:64}", "SENTRY_AUTH_TOKEN={h:30}"),
    ("grafana-cloud-api-token", "glc_{b:40}", "glc_{b:16}"),
    ("grafana-service-account-token", "glsa_{a:32}_{h:8}", "glsa_{a:32}_{h:4}"),
    ("grafana-api-key", "eyJrIjoi{a:80}", "eyJrIjoi{a:30}"),
    ("new-relic-user-api-key", "NRAK-{U:27}", "NRAK-{U:12}"),
    ("new-relic-browser-api-token", "NRJS-{h:19}", "NRJS-{h:10}"),
    ("new-relic-insert-key", "NRII-{w:32}", "NRII-{w:16}"),
    ("datadog-api-key", "DD_API_KEY={h:32}", "DD_API_KEY={h:20}"),
    ("datadog-app-key", "DD_APP_KEY={h:40}", "DD_APP_KEY={h:20}"),
    ("dynatrace-api-token", "dt0c01.{U:24}.{U:64}", "dt0c01.{U:24}.{U:20}"),
    ("honeycomb-api-key", "HONEYCOMB_API_KEY={a:22}", "HONEYCOMB_API_KEY={a:10}"),
    ("prefect-api-token", "pnu_{a:36}", "pnu_{a:20}"),
    ("postman-api-token", "PMAK-{h:24}-{h:34}", "PMAK-{h:24}-{h:10}"),
    ("readme-api-token", "rdme_{l:70}", "rdme_{l:30}"),
    ("linear-api-key", "lin_api_{a:40}", "lin_api_{a:20}"),
    ("linear-client-secret", "LINEAR_CLIENT_SECRET={h:32}", "LINEAR_CLIENT_SECRET={h:16}"),
    ("1password-secret-key", "A3-{U:6}-{U:11}-{U:5}-{U:5}-{U:5}", "A3-{U:6}-{U:5}-{U:5}"),
    ("1password-service-account-token", "ops_eyJ{b:260}", "ops_eyJ{b:50}"),
    ("launchdarkly-access-token", "LAUNCHDARKLY_ACCESS_TOKEN=api-{uuid}", "LAUNCHDARKLY_ACCESS_TOKEN=api-{h:12}"),
    ("clojars-api-token", "CLOJARS_{l:60}", "CLOJARS_{l:30}"),
    ("contentful-pat", "CFPAT-{w:43}", "CFPAT-{w:20}"),
    ("contentful-delivery-api-token", "CONTENTFUL_DELIVERY_TOKEN={w:43}", "CONTENTFUL_DELIVERY_TOKEN={w:20}"),
    ("defined-networking-api-token", "dnkey-{l:26}-{l:52}", "dnkey-{l:26}-{l:20}"),
    ("frameio-api-token", "fio-u-{w:64}", "fio-u-{w:30}"),
    ("age-secret-key", "AGE-SECRET-KEY-1{age:58}", "AGE-SECRET-KEY-1{age:30}"),
    ("typeform-api-token", "tfp_{w:59}", "tfp_{w:30}"),
    ("settlemint-pat", "sm_pat_{a:16}", "sm_pat_{a:8}"),
    ("intra42-client-secret", "s-s4t2ud-{h:64}", "s-s4t2ud-{h:30}"),
    ("sidekiq-secret", "BUNDLE_ENTERPRISE__CONTRIBSYS__COM={h:8}:{h:8}", "BUNDLE_ENTERPRISE__CONTRIBSYS__COM={h:8}"),
    ("gitter-access-token", "GITTER_TOKEN={l:40}", "GITTER_TOKEN={l:20}"),
    // Payments, messaging, AI, other SaaS
    ("stripe-access-token", "STRIPE_KEY=sk_live_{a:24}", "STRIPE_KEY=sk_live_{a:6}"),
    ("stripe-webhook-secret", "whsec_{a:32}", "whsec_{a:16}"),
    ("square-access-token", "sq0atp-{w:22}", "sq0atp-{w:10}"),
    ("square-secret", "sq0csp-{w:43}", "sq0csp-{w:20}"),
    ("paypal-braintree-access-token", "access_token$production${l:16}${h:32}", "access_token$production${l:16}${h:16}"),
    ("flutterwave-secret-key", "FLWSECK_TEST-{fh:32}-X", "FLWSECK_TEST-{fh:20}-X"),
    ("flutterwave-public-key", "FLWPUBK_TEST-{fh:32}-X", "FLWPUBK_TEST-{fh:20}-X"),
    ("razorpay-key-id", "rzp_live_{a:14}", "rzp_live_{a:8}"),
    ("plaid-access-token", "access-sandbox-{uuid}", "access-sandbox-{h:12}"),
    ("plaid-secret", "PLAID_SECRET={h:30}", "PLAID_SECRET={h:16}"),
    ("coinbase-access-token", "COINBASE_ACCESS_TOKEN={w:64}", "COINBASE_ACCESS_TOKEN={w:30}"),
    ("gocardless-api-token", "GOCARDLESS_TOKEN=live_{w:40}", "GOCARDLESS_TOKEN=live_{w:20}"),
    ("duffel-api-token", "duffel_test_{w:43}", "duffel_test_{w:20}"),
    ("easypost-api-token", "EZAK{a:54}", "EZAK{a:20}"),
    ("easypost-test-api-token", "EZTK{a:54}", "EZTK{a:20}"),
    ("shippo-api-token", "shippo_live_{h:40}", "shippo_live_{h:20}"),
    ("shopify-access-token", "shpat_{h:32}", "shpat_{h:16}"),
    ("shopify-custom-access-token", "shpca_{h:32}", "shpca_{h:16}"),
    ("shopify-private-app-access-token", "shppa_{h:32}", "shppa_{h:16}"),
    ("shopify-shared-secret", "shpss_{h:32}", "shpss_{h:16}"),
    ("slack-bot-token", "SLACK_BOT_TOKEN=xoxb-{d:12}-{d:13}-{a:24}", "SLACK_BOT_TOKEN=xoxb-{d:4}-{a:24}"),
    ("slack-user-token", "xoxp-{d:12}-{d:12}-{d:13}-{l:32}", "xoxp-{d:12}-{d:12}-{l:32}"),
    ("slack-app-token", "xapp-1-A{U:10}-{d:13}-{l:64}", "xapp-x-{U:10}"),
    ("slack-config-access-token", "xoxe.xoxp-1-{U:164}", "xoxe.xoxp-1-{U:40}"),
    ("slack-config-refresh-token", "xoxe-1-{U:146}", "xoxe-1-{U:40}"),
    ("slack-legacy-token", "xoxs-{d:10}-{d:10}-{d:10}-{h:64}", "xoxs-{d:10}-{h:20}"),
    ("slack-legacy-workspace-token", "xoxa-2-{a:40}", "xoxa-2-{a:4}"),
    ("slack-webhook-url", "https://hooks.slack.com/services/T{U:8}/B{U:8}/{a:24}", "https://hooks.slack.com/services/T{U:8}/"),
    ("discord-webhook-url", "https://discord.com/api/webhooks/{d:18}/{w:68}", "https://discord.com/api/webhooks/{d:18}/{w:20}"),
    ("discord-api-token", "DISCORD_API_TOKEN={h:64}", "DISCORD_API_TOKEN={h:30}"),
    ("discord-client-secret", "DISCORD_CLIENT_SECRET={w:32}", "DISCORD_CLIENT_SECRET={w:16}"),
    ("telegram-bot-api-token", "TELEGRAM_BOT_TOKEN={d:10}:A{w:34}", "TELEGRAM_BOT_TOKEN={d:10}:B{w:34}"),
    ("twilio-api-key", "TWILIO_API_KEY=SK{h:32}", "TWILIO_API_KEY=SK{h:20}"),
    ("twilio-auth-token", "TWILIO_AUTH_TOKEN={h:32}", "TWILIO_AUTH_TOKEN={h:16}"),
    ("sendgrid-api-token", "SG.{w:22}.{w:43}", "SG.{w:22}.{w:10}"),
    ("mailgun-private-api-token", "MAILGUN_API_KEY=key-{h:32}", "MAILGUN_API_KEY=key-{h:16}"),
    ("mailgun-pub-key", "MAILGUN_PUBLIC_KEY=pubkey-{h:32}", "MAILGUN_PUBLIC_KEY=pubkey-{h:16}"),
    ("mailgun-signing-key", "MAILGUN_SIGNING_KEY={fh:32}-{fh:8}-{fh:8}", "MAILGUN_SIGNING_KEY={fh:32}-{fh:8}"),
    ("mailchimp-api-key", "MAILCHIMP_KEY={h:32}-us14", "MAILCHIMP_KEY={h:20}-us14"),
    ("sendinblue-api-token", "xkeysib-{h:64}-{a:16}", "xkeysib-{h:64}-{a:8}"),
    ("postmark-server-token", "POSTMARK_SERVER_TOKEN={uuid}", "POSTMARK_SERVER_TOKEN={h:20}"),
    ("mattermost-access-token", "MATTERMOST_TOKEN={l:26}", "MATTERMOST_TOKEN={l:12}"),
    ("microsoft-teams-webhook", "https://acme.webhook.office.com/webhookb2/{uuid}@{uuid}/IncomingWebhook/{l:32}/{uuid}", "https://acme.webhook.office.com/webhookb2/{uuid}@{uuid}/IncomingWebhook/"),
    ("intercom-api-key", "INTERCOM_ACCESS_TOKEN={w:60}", "INTERCOM_ACCESS_TOKEN={w:20}"),
    ("zendesk-secret-key", "ZENDESK_API_TOKEN={a:40}", "ZENDESK_API_TOKEN={a:20}"),
    ("messagebird-api-token", "MESSAGEBIRD_API_KEY={a:25}", "MESSAGEBIRD_API_KEY={a:12}"),
    ("sendbird-access-token", "SENDBIRD_TOKEN={h:40}", "SENDBIRD_TOKEN={h:20}"),
    ("twitch-api-token", "TWITCH_API_TOKEN={l:30}", "TWITCH_API_TOKEN={l:15}"),
    ("twitter-bearer-token", "TWITTER_BEARER_TOKEN=AAAAAAAAAAAAAAAAAAAAAA{a:90}", "TWITTER_BEARER_TOKEN=AAAAAAAAAAAAAAAAAAAAAA{a:20}"),
    ("twitter-api-secret", "TWITTER_API_SECRET={a:50}", "TWITTER_API_SECRET={a:25}"),
    ("twitter-access-token", "TWITTER_ACCESS_TOKEN={d:19}-{a:30}", "TWITTER_ACCESS_TOKEN={d:19}-{a:10}"),
    ("facebook-page-access-token", "EAAC{a:120}", "EAAC{a:40}"),
    ("facebook-secret", "FACEBOOK_APP_SECRET={h:32}", "FACEBOOK_APP_SECRET={h:16}"),
    ("linkedin-client-secret", "LINKEDIN_CLIENT_SECRET={a:16}", "LINKEDIN_CLIENT_SECRET={a:8}"),
    ("dropbox-short-lived-api-token", "sl.{w:140}", "sl.{w:40}"),
    ("dropbox-long-lived-api-token", "DROPBOX_TOKEN={a:11}AAAAAAAAAA{w:43}", "DROPBOX_TOKEN={a:11}AAAAAAAAAA{w:20}"),
    ("asana-client-secret", "ASANA_CLIENT_SECRET={a:32}", "ASANA_CLIENT_SECRET={a:16}"),
    ("algolia-api-key", "ALGOLIA_API_KEY={a:32}", "ALGOLIA_API_KEY={a:16}"),
    ("hubspot-api-key", "HUBSPOT_API_KEY={uuid}", "HUBSPOT_API_KEY={h:12}"),
    ("hubspot-private-app-token", "pat-na1-{uuid}", "pat-na1-{h:12}"),
    ("okta-access-token", "OKTA_API_TOKEN=00{w:40}", "OKTA_API_TOKEN=00{w:20}"),
    ("yandex-api-key", "AQVN{w:36}", "AQVN{w:20}"),
    ("yandex-aws-access-token", "YANDEX_ACCESS_KEY=YC{w:38}", "YANDEX_ACCESS_KEY=YC{w:20}"),
    ("yandex-access-token", "t1.{w:20}.{w:86}", "t1.{w:20}.{w:40}"),
    ("sumologic-access-id", "SUMO_ACCESS_ID=su{a:12}", "SUMO_ACCESS_ID=su{a:6}"),
    ("etsy-access-token", "ETSY_ACCESS_TOKEN={l:24}", "ETSY_ACCESS_TOKEN={l:12}"),
    ("beamer-api-token", "BEAMER_API_KEY=b_{w:44}", "BEAMER_API_KEY=b_{w:20}"),
    ("freshbooks-access-token", "FRESHBOOKS_TOKEN={l:64}", "FRESHBOOKS_TOKEN={l:30}"),
    ("lob-api-key", "LOB_API_KEY=live_{h:35}", "LOB_API_KEY=live_{h:20}"),
    ("auth0-client-secret", "AUTH0_CLIENT_SECRET={w:64}", "AUTH0_CLIENT_SECRET={w:30}"),
    ("firebase-cloud-messaging-key", "AAAA{w:7}:{w:140}", "AAAA{w:7}:{w:40}"),
    ("shodan-api-key", "SHODAN_API_KEY={a:32}", "SHODAN_API_KEY={a:16}"),
    ("mapbox-api-token", "pk.{a:60}.{a:22}", "pk.{a:30}.{a:22}"),
    ("mapbox-secret-token", "sk.{a:60}.{a:22}", "sk.{a:30}.{a:22}"),
    ("notion-api-token", "ntn_{d:11}{a:35}", "ntn_{d:11}{a:10}"),
    ("notion-legacy-token", "NOTION_TOKEN=secret_{a:43}", "NOTION_TOKEN=secret_{a:20}"),
    ("openai-api-key", "OPENAI_API_KEY=sk-proj-{w:64}T3BlbkFJ{w:64}", "OPENAI_API_KEY=sk-proj-{w:64}"),
    ("anthropic-api-key", "sk-ant-api03-{w:93}AA", "sk-ant-api03-{w:40}AA"),
    ("anthropic-admin-key", "sk-ant-admin01-{w:93}AA", "sk-ant-admin01-{w:40}AA"),
    ("huggingface-access-token", "hf_{L:34}", "hf_{L:20}"),
    ("huggingface-org-token", "api_org_{L:34}", "api_org_{L:20}"),
    ("perplexity-api-key", "pplx-{a:48}", "pplx-{a:24}"),
    ("groq-api-key", "gsk_{a:52}", "gsk_{a:26}"),
    ("replicate-api-token", "r8_{a:37}", "r8_{a:20}"),
    ("xai-api-key", "xai-{a:80}", "xai-{a:40}"),
    ("cohere-api-token", "COHERE_API_KEY={a:40}", "COHERE_API_KEY={a:20}"),
    ("mistral-api-key", "MISTRAL_API_KEY={a:32}", "MISTRAL_API_KEY={a:16}"),
    ("deepseek-api-key", "DEEPSEEK_API_KEY=sk-{h:32}", "DEEPSEEK_API_KEY=sk-{h:16}"),
    // Keys, tokens, connection strings, generic assignments
    ("private-key", "-----BEGIN RSA PRIVATE KEY-----\n{b:64}\n{b:64}\n{b:20}==\n-----END RSA PRIVATE KEY-----", "-----BEGIN PUBLIC KEY-----\n{b:64}\n{b:64}\n-----END PUBLIC KEY-----"),
    ("openssh-private-key", "-----BEGIN OPENSSH PRIVATE KEY-----\n{b:70}\n{b:70}\n-----END OPENSSH PRIVATE KEY-----", "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----"),
    ("pgp-private-key", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{b:64}\n{b:64}\n={b:4}\n-----END PGP PRIVATE KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{b:64}\n{b:64}\n-----END PGP PUBLIC KEY BLOCK-----"),
    ("putty-private-key", "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none", "PuTTY-User-Key-File-1: ssh-rsa"),
    ("jwt", "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{a:40}.{w:43}", "header = eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"),
    ("postgres-connection-string", "DATABASE_URL=postgres://app:{a:16}@db.internal:5432/app", "DATABASE_URL=postgres://app@db.internal:5432/app"),
    ("mysql-connection-string", "url: mysql://root:{a:16}@localhost:3306/shop", "url: mysql://root@localhost:3306/shop"),
    ("mongodb-connection-string", "MONGO_URI=mongodb+srv://svc:{a:16}@cluster0.example.net/db", "MONGO_URI=mongodb+srv://cluster0.example.net/db"),
    ("redis-connection-string", "REDIS_URL=redis://:{a:16}@cache:6379/0", "REDIS_URL=redis://cache:6379/0"),
    ("amqp-connection-string", "BROKER=amqp://guest:{a:16}@rabbit:5672/", "BROKER=amqp://rabbit:5672/"),
    ("jdbc-connection-string", "jdbc:postgresql://db:5432/app?user=app&password={a:16}", "jdbc:postgresql://db:5432/app?user=app"),
    ("ado-net-connection-string", "Server=tcp:db.example.net,1433;Database=app;User ID=app;Password={a:16};", "Server=tcp:db.example.net,1433;Database=app;Integrated Security=true;"),
    ("uri-credentials", "git clone https://deploy:{a:16}@git.example.com/repo.git", "git clone https://git.example.com/repo.git"),
    ("vault-service-token", "VAULT_TOKEN=hvs.{w:90}", "VAULT_TOKEN=hvs.{w:12}"),
    ("vault-batch-token", "hvb.{w:90}", "hvb.{w:10}"),
    ("vault-recovery-token", "hvr.{w:30}", "hvr.{w:10}"),
    ("vault-legacy-token", "VAULT_TOKEN=s.{a:24}", "VAULT_TOKEN=s.{a:12}"),
    ("ward-token", "WARD_TOKEN={ward}", "WARD_TOKEN={wardbad}"),
    ("generic-password", "db_password = \"{a:20}\"", "password = os.environ[\"DB_PASSWORD\"]"),
    ("generic-api-key", "api_key = \"{a:32}\"", "api_key = \"{x:32}\""),
    // Added for issue 23: new formats, and new shapes of existing rules
    ("aws-bedrock-short-term-api-key", "AWS_BEARER_TOKEN_BEDROCK=bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t{b:200}", "AWS_BEARER_TOKEN_BEDROCK=bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t{b:20}"),
    ("scalingo-api-token", "SCALINGO_API_TOKEN=tk-us-{w:48}", "SCALINGO_API_TOKEN=tk-us-{w:20}"),
    ("clickhouse-cloud-api-secret-key", "key = 4b1d{a:38}", "key = 4b1d{a:20}"),
    ("confluent-access-token", "CONFLUENT_API_KEY={U:16}", "CONFLUENT_API_KEY={U:10}"),
    ("new-relic-user-api-id", "NEW_RELIC_USER_ID={l:64}", "NEW_RELIC_USER_ID={l:30}"),
    ("datadog-access-token", "datadog_access_token = \"{a:40}\"", "datadog_access_token = \"{a:20}\""),
    ("settlemint-access-token", "sm_aat_{a:16}", "sm_aat_{a:8}"),
    ("sourcegraph-access-token", "SRC_ACCESS_TOKEN=sgp_{h:16}_{h:40}", "SRC_ACCESS_TOKEN=sgp_{h:16}_{h:20}"),
    ("maxmind-license-key", "MAXMIND_LICENSE_KEY={a:6}_{a:29}_mmk", "MAXMIND_LICENSE_KEY={a:6}_{a:12}_mmk"),
    ("looker-client-id", "LOOKER_CLIENT_ID={a:20}", "LOOKER_CLIENT_ID={a:10}"),
    ("looker-client-secret", "LOOKER_CLIENT_SECRET={a:24}", "LOOKER_CLIENT_SECRET={a:12}"),
    ("cisco-meraki-api-key", "MERAKI_DASHBOARD_API_KEY={h:40}", "MERAKI_DASHBOARD_API_KEY={h:20}"),
    ("authress-service-client-access-key", "AUTHRESS_KEY=sc_{l:10}.{l:4}.acc_{l:10}.{w:40}", "AUTHRESS_KEY=sc_{l:10}.{l:4}.{l:10}.{w:40}"),
    ("sidekiq-sensitive-url", "source \"https://{h:8}:{h:8}@gems.contribsys.com/\"", "source \"https://gems.contribsys.com/\""),
    ("flutterwave-encryption-key", "FLWSECK_TEST{fh:12}", "FLWSECK_TEST{fh:6}"),
    ("plaid-client-id", "PLAID_CLIENT_ID={a:24}", "PLAID_CLIENT_ID={a:12}"),
    ("bittrex-access-key", "BITTREX_API_KEY={a:32}", "BITTREX_API_KEY={a:16}"),
    ("kucoin-access-token", "KUCOIN_API_KEY={h:24}", "KUCOIN_API_KEY={h:12}"),
    ("kucoin-secret-key", "KUCOIN_API_SECRET={uuid}", "KUCOIN_API_SECRET={h:12}"),
    ("kraken-access-token", "KRAKEN_API_KEY={b:86}", "KRAKEN_API_KEY={b:40}"),
    ("finicity-api-token", "FINICITY_APP_KEY={h:32}", "FINICITY_APP_KEY={h:16}"),
    ("finicity-client-secret", "FINICITY_SECRET={a:20}", "FINICITY_SECRET={a:10}"),
    ("finnhub-access-token", "FINNHUB_TOKEN={a:20}", "FINNHUB_TOKEN={a:10}"),
    ("squarespace-access-token", "SQUARESPACE_API_KEY={uuid}", "SQUARESPACE_API_KEY={h:12}"),
    ("slack-legacy-bot-token", "\"bot_token\": \"xoxb-{d:12}-{a:24}\"", "\"bot_token\": \"xoxb-{d:12}-{a:8}\""),
    ("discord-client-id", "DISCORD_CLIENT_ID={d:18}", "DISCORD_CLIENT_ID={d:10}"),
    ("messagebird-client-id", "MESSAGEBIRD_CLIENT_ID={uuid}", "MESSAGEBIRD_CLIENT_ID={h:12}"),
    ("sendbird-access-id", "SENDBIRD_APP_ID={uuid}", "SENDBIRD_APP_ID={h:12}"),
    ("twitter-access-secret", "TWITTER_ACCESS_SECRET={a:45}", "TWITTER_ACCESS_SECRET={a:20}"),
    ("twitter-api-key", "TWITTER_API_KEY={a:25}", "TWITTER_API_KEY={a:12}"),
    ("facebook-access-token", "FACEBOOK_ACCESS_TOKEN={d:15}|{w:27}", "FACEBOOK_ACCESS_TOKEN={d:15}|{w:12}"),
    ("linkedin-client-id", "LINKEDIN_CLIENT_ID={l:14}", "LINKEDIN_CLIENT_ID={l:8}"),
    ("dropbox-api-token", "DROPBOX_APP_KEY={l:15}", "DROPBOX_APP_KEY={l:8}"),
    ("asana-client-id", "ASANA_CLIENT_ID={d:16}", "ASANA_CLIENT_ID={d:8}"),
    ("adafruit-api-key", "ADAFRUIT_IO_KEY=aio_{a:28}", "ADAFRUIT_IO_KEY=aio_{a:12}"),
    ("adobe-client-id", "ADOBE_CLIENT_ID={h:32}", "ADOBE_CLIENT_ID={h:16}"),
    ("adobe-client-secret", "adobeClient := \"p8e-{a:32}\"", "adobeClient := \"p8e-{a:16}\""),
    ("airtable-api-key", "AIRTABLE_TOKEN=pat{a:14}.{h:64}", "AIRTABLE_TOKEN=pat{a:14}.{h:20}"),
    ("flickr-access-token", "FLICKR_API_KEY={a:32}", "FLICKR_API_KEY={a:16}"),
    ("nytimes-access-token", "NYTIMES_API_KEY={w:32}", "NYTIMES_API_KEY={w:16}"),
    ("rapidapi-access-token", "X_RAPIDAPI_KEY={w:50}", "X_RAPIDAPI_KEY={w:25}"),
    ("sumologic-access-token", "SUMO_ACCESS_KEY={a:64}", "SUMO_ACCESS_KEY={a:30}"),
    ("lob-pub-api-key", "LOB_PUBLISHABLE_KEY=test_pub_{h:31}", "LOB_PUBLISHABLE_KEY=test_pub_{h:16}"),
    ("jwt-base64", "token: ZXlKaGJHY2lPaUpJVXpJMU5pSXNJblI1Y0NJNklrcFhWQ0o5LmV5SnpkV0lpT2lJeE1qTTBOVFkzT0Rrd0lpd2libUZ0WlNJNklrcHZhRzRnUkc5bElpd2lhV0YwSWpveE5URTJNak01TURJeWZRLlNmbEt4d1JKU01lS0tGMlFUNGZ3cE1lSmYzNlBPazZ5SlZfYWRRc3N3NWM=", "token: ZXlK{b:80}"),
    ("nuget-config-password", "<add key=\"ClearTextPassword\" value=\"{a:20}\" />", "<add key=\"Username\" value=\"{a:20}\" />"),
    ("curl-auth-user", "curl --cacert ca.crt -u elastic:{a:16} https://localhost:9200", "curl -u \"$USER:$PASSWORD\" https://localhost:9200"),
    ("curl-auth-header", "curl -H \"Authorization: Bearer {h:32}\" https://api.example.com/v1/status", "curl -H \"Authorization: Bearer $API_TOKEN\" https://api.example.com/v1/status"),
    ("fastly-api-token", "FASTLY_API_TOKEN={w:28}====", "FASTLY_API_TOKEN={w:12}===="),
    ("netlify-access-token", "NETLIFY_AUTH_TOKEN={w:40}==", "NETLIFY_AUTH_TOKEN={w:20}=="),
    ("flyio-access-token", "FLY_API_TOKEN=\"FlyV1 fm2_{b:150}=\"", "FLY_API_TOKEN=\"FlyV1 fm2_{b:40}=\""),
    ("slack-config-access-token", "\"access_token\": \"xoxe.xoxp-1-{a:163}\"", "\"access_token\": \"xoxe.xoxp-1-{a:40}\""),
    ("slack-config-refresh-token", "\"refresh_token\": \"xoxe-1-{a:146}\"", "\"refresh_token\": \"xoxe-1-{a:40}\""),
    ("slack-legacy-workspace-token", "\"access_token\": \"xoxa-2-{d:9}-{d:11}-{d:13}-{h:18}\"", "\"access_token\": \"xoxa-2-{d:4}\""),
    ("jfrog-identity-token", "xray_token = \"{a:64}\"", "xray_token = \"{a:30}\""),
    ("codecov-access-token", "CODECOV_TOKEN={a:32}", "CODECOV_TOKEN={a:16}"),
    ("dynatrace-api-token", "dt0c01.{l:24}.{l:64}", "dt0c01.{l:24}.{l:20}"),
    ("launchdarkly-access-token", "LAUNCHDARKLY_SDK_KEY={w:40}", "LAUNCHDARKLY_SDK_KEY={w:20}"),
    ("new-relic-user-api-key", "NRAK-{l:27}", "NRAK-{l:12}"),
    ("sendgrid-api-token", "SENDGRID_API_KEY=SG.{w:66}", "SENDGRID_API_KEY=SG.{w:30}"),
    ("sonarqube-token", "SONAR_LOGIN={h:40}", "SONAR_LOGIN={h:20}"),
    ("gitlab-runner-token", "glrt-t1_{w:27}.{l:9}", "glrt-t1_{w:8}"),
    ("sourcegraph-access-token", "SOURCEGRAPH_TOKEN={h:40}", "SOURCEGRAPH_TOKEN={h:20}"),
    ("sourcegraph-access-token", "sgp_local_{h:40}", "sgp_local_{h:20}"),
    ("jfrog-api-key", "--set imagePullSecretJfrog.password={a:73}", "--set imagePullSecretJfrog.password={a:40}"),
    ("artifactory-reference-token", "cmVmd{a:59}", "cmVmd{a:30}"),
    ("slack-app-token", "xapp-1-A{d:10}-{d:13}-{a:64}", "xapp-1-A{d:10}"),
    ("plaid-secret", "PLAID_SECRET={a:30}", "PLAID_SECRET={a:16}"),
    ("facebook-access-token", "FACEBOOK_APP_TOKEN={d:16}%{w:32}", "FACEBOOK_APP_TOKEN={d:16}%{w:12}"),
    ("flutterwave-encryption-key", "FLWSECK_TEST-{fh:12}", "FLWSECK_TEST-{fh:6}"),
    ("sonarqube-token", "sonar.token={w:40}", "sonar.token={w:20}"),
];

/// Rules that look at the file name alone: (rule id, path of a true positive, path of a near miss).
pub(crate) const PATH_FIXTURES: &[(&str, &str, &str)] = &[(
    "pkcs12-file",
    "deploy/certs/client.p12",
    "docs/p12-files.md",
)];

/// True for `uuid`, `ward`, `wardbad` and `CLASS:N`.
fn is_placeholder(spec: &str) -> bool {
    matches!(spec, "uuid" | "ward" | "wardbad")
        || spec.split_once(':').is_some_and(|(class, count)| {
            !class.is_empty()
                && class.bytes().all(|b| b.is_ascii_alphabetic())
                && !count.is_empty()
                && count.bytes().all(|b| b.is_ascii_digit())
        })
}

/// A small deterministic generator (splitmix64): tests must not depend on the system's RNG.
pub(crate) struct Gen(u64);

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl Gen {
    /// A generator with a fixed seed.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `n` random characters of `alphabet`.
    pub(crate) fn pick(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| char::from(alphabet[self.below(alphabet.len())]))
            .collect()
    }

    /// A Ward token; `valid` chooses whether its checksum is right.
    pub(crate) fn ward_token(&mut self, valid: bool) -> String {
        let random = self.pick(BASE62, token_format::RANDOM_LEN);
        let token = token_format::token_from_random(&random);
        if valid {
            return token;
        }
        // The last checksum digit, one off.
        let (head, last) = token.split_at(token.len() - 1);
        format!("{head}{}", if last == "0" { '1' } else { '0' })
    }

    /// Expands a template (see the module documentation).
    pub(crate) fn expand(&mut self, template: &str) -> String {
        let mut out = String::with_capacity(template.len() * 2);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let spec = rest[open + 1..]
                .find('}')
                .map(|len| &rest[open + 1..open + 1 + len])
                .filter(|spec| is_placeholder(spec));
            match spec {
                Some(spec) => {
                    out.push_str(&self.placeholder(spec));
                    rest = &rest[open + spec.len() + 2..];
                }
                // Any other brace is literal text (code templates are full of them).
                None => {
                    out.push('{');
                    rest = &rest[open + 1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Expands a template with every random part replaced by `filler` repeated: the placeholder
    /// people write in place of a real key (`ghp_xxxx…`).
    pub(crate) fn fill(&mut self, template: &str, filler: char) -> String {
        let mut out = String::with_capacity(template.len() * 2);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let spec = rest[open + 1..]
                .find('}')
                .map(|len| &rest[open + 1..open + 1 + len])
                .filter(|spec| is_placeholder(spec));
            match spec {
                Some(spec) => {
                    let shape = self.placeholder(spec);
                    out.extend(shape.chars().map(|c| if c == '-' { c } else { filler }));
                    rest = &rest[open + spec.len() + 2..];
                }
                None => {
                    out.push('{');
                    rest = &rest[open + 1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn placeholder(&mut self, spec: &str) -> String {
        match spec {
            "uuid" => {
                let hex = b"0123456789abcdef";
                format!(
                    "{}-{}-4{}-a{}-{}",
                    self.pick(hex, 8),
                    self.pick(hex, 4),
                    self.pick(hex, 3),
                    self.pick(hex, 3),
                    self.pick(hex, 12)
                )
            }
            "ward" => self.ward_token(true),
            "wardbad" => self.ward_token(false),
            _ => {
                let (class, count) = spec.split_once(':').expect("class:count");
                let count: usize = count.parse().expect("count");
                let alphabet: &[u8] = match class {
                    "h" => b"0123456789abcdef",
                    "H" => b"0123456789ABCDEF",
                    "a" => BASE62,
                    "l" => b"0123456789abcdefghijklmnopqrstuvwxyz",
                    "U" => b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                    "d" => b"0123456789",
                    "b" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                    "B" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
                    "w" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
                    "x" => b"abcdefghijklmnopqrstuvwxyz",
                    "X" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                    "L" => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                    "fh" => b"0123456789abcdefgh",
                    "age" => b"QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
                    other => panic!("unknown class {other}"),
                };
                self.pick(alphabet, count)
            }
        }
    }
}
