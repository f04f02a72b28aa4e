//! Source hosting, CI/CD, package registries and developer tooling.

use super::{ASSIGN, UUID, VALUE_END, assigned, name_start, raw, token, with_entropy};
use crate::rule::Rule;

pub(super) fn rules() -> Vec<Rule> {
    vec![
        token(
            "github-pat",
            "GitHub personal access token (classic)",
            r"ghp_[0-9a-zA-Z]{36}",
            &["ghp_"],
        ),
        token(
            "github-oauth",
            "GitHub OAuth access token",
            r"gho_[0-9a-zA-Z]{36}",
            &["gho_"],
        ),
        token(
            "github-app-token",
            "GitHub App token",
            r"(?:ghu|ghs)_[0-9a-zA-Z]{36}",
            &["ghu_", "ghs_"],
        ),
        token(
            "github-refresh-token",
            "GitHub refresh token",
            r"ghr_[0-9a-zA-Z]{36,76}",
            &["ghr_"],
        ),
        token(
            "github-fine-grained-pat",
            "GitHub fine-grained personal access token",
            r"github_pat_[0-9a-zA-Z_]{82}",
            &["github_pat_"],
        ),
        token(
            "gitlab-pat",
            "GitLab personal access token",
            r"glpat-[0-9A-Za-z_-]{20,300}(?:\.[0-9a-z]{9})?",
            &["glpat-"],
        ),
        token(
            "gitlab-ptt",
            "GitLab pipeline trigger token",
            r"glptt-[0-9a-f]{40}",
            &["glptt-"],
        ),
        token(
            "gitlab-rrt",
            "GitLab runner registration token",
            r"GR1348941[0-9A-Za-z_-]{20}",
            &["gr1348941"],
        ),
        token(
            "gitlab-deploy-token",
            "GitLab deploy token",
            r"gldt-[0-9A-Za-z_-]{20}",
            &["gldt-"],
        ),
        token(
            "gitlab-feed-token",
            "GitLab feed token",
            r"glft-[0-9A-Za-z_-]{20}",
            &["glft-"],
        ),
        token(
            "gitlab-incoming-mail-token",
            "GitLab incoming mail token",
            r"glimt-[0-9A-Za-z_-]{25}",
            &["glimt-"],
        ),
        token(
            "gitlab-kubernetes-agent-token",
            "GitLab Kubernetes agent token",
            r"glagent-[0-9A-Za-z_-]{50}",
            &["glagent-"],
        ),
        token(
            "gitlab-oauth-app-secret",
            "GitLab OAuth application secret",
            r"gloas-[0-9A-Za-z_-]{64}",
            &["gloas-"],
        ),
        token(
            "gitlab-scim-token",
            "GitLab SCIM token",
            r"glsoat-[0-9A-Za-z_-]{20}",
            &["glsoat-"],
        ),
        token(
            "gitlab-cicd-job-token",
            "GitLab CI/CD job token",
            r"glcbt-[0-9A-Za-z]{1,5}_[0-9A-Za-z_-]{20}",
            &["glcbt-"],
        ),
        token(
            "gitlab-runner-token",
            "GitLab runner authentication token",
            r"glrt-(?:t[0-9]_)?[0-9A-Za-z_-]{20,300}(?:\.[0-9a-z]{9})?",
            &["glrt-"],
        ),
        token(
            "gitlab-feature-flag-token",
            "GitLab feature flag client token",
            r"glffct-[0-9A-Za-z_-]{20}",
            &["glffct-"],
        ),
        raw(
            "gitlab-session-cookie",
            "GitLab session cookie",
            r"_gitlab_session=([0-9a-z]{32})(?:[^\n0-9a-z]|(?m:$))",
            &["_gitlab_session="],
        ),
        assigned(
            "bitbucket-client-id",
            "Bitbucket OAuth client id",
            "bitbucket",
            "[A-Za-z0-9]{32}",
        ),
        assigned(
            "bitbucket-client-secret",
            "Bitbucket OAuth client secret",
            "bitbucket",
            "[A-Za-z0-9=_-]{64}",
        ),
        token(
            "bitbucket-app-password",
            "Bitbucket app password",
            r"ATBB[A-Za-z0-9_=.-]{32}",
            &["atbb"],
        ),
        token(
            "atlassian-api-token",
            "Atlassian API token",
            r"ATATT3[A-Za-z0-9_=-]{186}",
            &["atatt3"],
        ),
        assigned(
            "atlassian-legacy-api-token",
            "Atlassian (Jira, Confluence) legacy API token",
            "atlassian|confluence|jira",
            "[A-Za-z0-9]{24}",
        ),
        token(
            "circleci-personal-token",
            "CircleCI personal API token",
            r"CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40}",
            &["ccipat_"],
        ),
        assigned(
            "circleci-api-token",
            "CircleCI API token",
            "circleci",
            "[a-f0-9]{40}",
        ),
        assigned(
            "travisci-access-token",
            "Travis CI access token",
            "travis",
            "[A-Za-z0-9]{22}",
        ),
        assigned(
            "droneci-access-token",
            "Drone CI access token",
            "drone",
            "[A-Za-z0-9]{32}",
        ),
        token(
            "buildkite-api-token",
            "Buildkite user API token",
            r"bkua_[a-f0-9]{40}",
            &["bkua_"],
        ),
        assigned(
            "jenkins-api-token",
            "Jenkins API token",
            "jenkins",
            "11[a-f0-9]{32}",
        ),
        token(
            "npm-access-token",
            "npm access token",
            r"npm_[A-Za-z0-9]{36}",
            &["npm_"],
        ),
        token(
            "pypi-upload-token",
            "PyPI upload token",
            r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}",
            &["pypi-ageichlwas5vcmc"],
        ),
        token(
            "rubygems-api-token",
            "RubyGems API token",
            r"rubygems_[a-f0-9]{48}",
            &["rubygems_"],
        ),
        token(
            "nuget-api-key",
            "NuGet API key",
            r"oy2[a-z0-9]{43}",
            &["oy2"],
        ),
        token(
            "dockerhub-pat",
            "Docker Hub personal access token",
            r"dckr_pat_[A-Za-z0-9_-]{27}",
            &["dckr_pat_"],
        ),
        sonarqube_token(),
        assigned(
            "codecov-access-token",
            "Codecov upload token",
            "codecov",
            &format!("{UUID}|[A-Za-z0-9]{{32}}"),
        ),
        assigned("snyk-api-token", "Snyk API token", "snyk", UUID),
        token(
            "octopus-deploy-api-key",
            "Octopus Deploy API key",
            r"API-[A-Z0-9]{26}",
            &["api-"],
        ),
        token(
            "harness-api-key",
            "Harness personal or service account token",
            r"(?:pat|sat)\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}",
            &["pat.", "sat."],
        ),
        token(
            "sentry-org-token",
            "Sentry organization token",
            r"sntrys_eyJpYXQiO[A-Za-z0-9+/=_]{60,}",
            &["sntrys_"],
        ),
        token(
            "sentry-user-token",
            "Sentry user token",
            r"sntryu_[a-f0-9]{64}",
            &["sntryu_"],
        ),
        assigned(
            "sentry-access-token",
            "Sentry access token",
            "sentry",
            "[a-f0-9]{64}",
        ),
        token(
            "grafana-cloud-api-token",
            "Grafana Cloud API token",
            r"glc_[A-Za-z0-9+/]{32,400}={0,2}",
            &["glc_"],
        ),
        token(
            "grafana-service-account-token",
            "Grafana service account token",
            r"glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}",
            &["glsa_"],
        ),
        token(
            "grafana-api-key",
            "Grafana API key",
            r"eyJrIjoi[A-Za-z0-9]{70,400}={0,2}",
            &["eyjrijoi"],
        ),
        token(
            "new-relic-user-api-key",
            "New Relic user API key",
            r"NRAK-[A-Za-z0-9]{27}",
            &["nrak-"],
        ),
        assigned(
            "new-relic-user-api-id",
            "New Relic user API id",
            "new_relic|newrelic|new-relic",
            "[A-Za-z0-9]{64}",
        ),
        token(
            "new-relic-browser-api-token",
            "New Relic browser API token",
            r"NRJS-[a-f0-9]{19}",
            &["nrjs-"],
        ),
        token(
            "new-relic-insert-key",
            "New Relic insert key",
            r"NRII-[A-Za-z0-9_-]{32}",
            &["nrii-"],
        ),
        assigned(
            "datadog-api-key",
            "Datadog API key",
            "datadog|dd_api",
            "[a-f0-9]{32}",
        ),
        assigned(
            "datadog-app-key",
            "Datadog application key",
            "datadog|dd_app",
            "[a-f0-9]{40}",
        ),
        assigned(
            "datadog-access-token",
            "Datadog access token",
            "datadog",
            "[A-Za-z0-9]{40}",
        ),
        token(
            "dynatrace-api-token",
            "Dynatrace API token",
            r"dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}",
            &["dt0c01"],
        ),
        assigned(
            "honeycomb-api-key",
            "Honeycomb API key",
            "honeycomb",
            "[A-Za-z0-9]{22}",
        ),
        token(
            "prefect-api-token",
            "Prefect API token",
            r"pnu_[A-Za-z0-9]{36}",
            &["pnu_"],
        ),
        token(
            "postman-api-token",
            "Postman API key",
            r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}",
            &["pmak-"],
        ),
        token(
            "readme-api-token",
            "ReadMe API key",
            r"rdme_[a-z0-9]{70}",
            &["rdme_"],
        ),
        token(
            "linear-api-key",
            "Linear API key",
            r"lin_api_[A-Za-z0-9]{40}",
            &["lin_api_"],
        ),
        assigned(
            "linear-client-secret",
            "Linear OAuth client secret",
            "linear",
            "[a-f0-9]{32}",
        ),
        token(
            "1password-secret-key",
            "1Password account secret key",
            r"A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}",
            &["a3-"],
        ),
        token(
            "1password-service-account-token",
            "1Password service account token",
            r"ops_eyJ[A-Za-z0-9+/]{250,}={0,3}",
            &["ops_eyj"],
        ),
        assigned(
            "launchdarkly-access-token",
            "LaunchDarkly access token",
            "launchdarkly",
            "api-[a-f0-9-]{36}|[A-Za-z0-9=_-]{40}",
        ),
        token(
            "clojars-api-token",
            "Clojars deploy token",
            r"CLOJARS_[a-z0-9]{60}",
            &["clojars_"],
        ),
        token(
            "contentful-pat",
            "Contentful personal access token",
            r"CFPAT-[A-Za-z0-9_-]{43}",
            &["cfpat-"],
        ),
        assigned(
            "contentful-delivery-api-token",
            "Contentful delivery API token",
            "contentful",
            "[A-Za-z0-9=_-]{43}",
        ),
        token(
            "defined-networking-api-token",
            "Defined Networking API token",
            r"dnkey-[a-z0-9=_-]{26}-[a-z0-9=_-]{52}",
            &["dnkey-"],
        ),
        token(
            "frameio-api-token",
            "Frame.io API token",
            r"fio-u-[A-Za-z0-9_=-]{64}",
            &["fio-u-"],
        ),
        token(
            "age-secret-key",
            "age encryption secret key",
            r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
            &["age-secret-key-1"],
        ),
        token(
            "typeform-api-token",
            "Typeform personal access token",
            r"tfp_[A-Za-z0-9_.=-]{59}",
            &["tfp_"],
        ),
        token(
            "settlemint-pat",
            "SettleMint personal access token",
            r"sm_pat_[A-Za-z0-9]{16}",
            &["sm_pat_"],
        ),
        token(
            "settlemint-access-token",
            "SettleMint application or service access token",
            r"sm_(?:aat|sat)_[A-Za-z0-9]{16}",
            &["sm_aat_", "sm_sat_"],
        ),
        token(
            "sourcegraph-access-token",
            "Sourcegraph access token",
            r"sgph?_(?:[a-f0-9]{16}_)?[a-f0-9]{40}",
            &["sgp_", "sgph_"],
        ),
        token(
            "maxmind-license-key",
            "MaxMind license key",
            r"[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk",
            &["_mmk"],
        ),
        assigned(
            "looker-client-id",
            "Looker API client id",
            "looker",
            "[A-Za-z0-9]{20}",
        ),
        assigned(
            "looker-client-secret",
            "Looker API client secret",
            "looker",
            "[A-Za-z0-9]{24}",
        ),
        assigned(
            "cisco-meraki-api-key",
            "Cisco Meraki API key",
            "meraki",
            "[a-f0-9]{40}",
        ),
        token(
            "authress-service-client-access-key",
            "Authress service client access key",
            r"(?i:(?:sc|ext|scauth|authress)_[a-z0-9]{5,30}\.[a-z0-9]{4,6}\.acc[_-][a-z0-9-]{10,32}\.[a-z0-9+/_=-]{30,120})",
            &[".acc_", ".acc-"],
        ),
        token(
            "intra42-client-secret",
            "42 intranet client secret",
            r"s-s4t2(?:ud|af)-[a-f0-9]{64}",
            &["s-s4t2"],
        ),
        // Two short hex halves: low entropy even when random.
        with_entropy(
            assigned(
                "sidekiq-secret",
                "Sidekiq Enterprise credentials",
                "BUNDLE_ENTERPRISE__CONTRIBSYS__COM|BUNDLE_GEMS__CONTRIBSYS__COM",
                "[a-f0-9]{8}:[a-f0-9]{8}",
            ),
            2.0,
        ),
        raw(
            "sidekiq-sensitive-url",
            "Sidekiq Enterprise credentials in a gem source URL",
            r"(?i:https?://)([a-f0-9]{8}:[a-f0-9]{8})@(?i:gems|enterprise)\.contribsys\.com",
            &["contribsys.com"],
        ),
        assigned(
            "gitter-access-token",
            "Gitter access token",
            "gitter",
            "[a-z0-9_-]{40}",
        ),
    ]
}

/// SonarQube's prefixed tokens, and the older unprefixed ones assigned to a Sonar name
/// (`SONAR_TOKEN`, `SONAR_LOGIN`, `sonar.login`).
fn sonarqube_token() -> Rule {
    let prefixed =
        r"(?:(?m:^)|[^\n0-9A-Za-z_.])((?:squ|sqp|sqa)_[a-f0-9]{40})(?:[^\n0-9A-Za-z_-]|(?m:$))";
    let assigned = format!(
        "{}(?:[0-9A-Za-z_. \\t-]{{0,30}}){ASSIGN}([a-f0-9]{{40}}){VALUE_END}",
        name_start("sonar")
    );
    raw(
        "sonarqube-token",
        "SonarQube / SonarCloud token",
        &format!("{prefixed}|{assigned}"),
        &["squ_", "sqp_", "sqa_", "sonar"],
    )
}
