//! A labelled corpus for recall and false positives, generated at run time from documented key
//! formats: every rule's secret in each of the assignment forms people write (configuration
//! files, source code, Makefiles, XML, YAML blocks), secrets of formats with a rule of their own,
//! and negatives (placeholders under each rule's shape, documentation keys, identifiers that
//! merely contain a provider's name, one vendor's key next to another vendor's name).

#![allow(dead_code, clippy::expect_used)]

use super::corpus::{FIXTURES, Gen};
use ward_scan::Scanner;

/// One labelled sample: text scanned as a file at `path`; `rule` is the rule that must report
/// `secret` (`None` for a negative, where nothing may be reported).
pub(crate) struct Sample {
    pub(crate) class: &'static str,
    pub(crate) path: &'static str,
    pub(crate) text: String,
    pub(crate) rule: Option<&'static str>,
    pub(crate) secret: String,
}

/// The forms a secret is assigned in: `{i}` is an identifier naming the provider, `{I}` the same
/// in capitals, `{s}` the secret.
pub(crate) const FORMS: &[&str] = &[
    "{i}Token=\"{s}\"",
    "{i}Token = \"{s}\"",
    "{i}Token={s}",
    "{i}Token = {s}",
    "{\n    \"{i}_token\": \"{s}\"\n}",
    "\\{\n    \\\"{i}_token\\\": \\\"{s}\\\"\n\\}",
    "<{i}Token>{s}</{i}Token>",
    "<{i}Token>\n    {s}\n</{i}Token>",
    "{i}_token: {s}",
    "{i}_token: '{s}'",
    "{i}_token: \"{s}\"",
    "{i}_token: |\n  {s}",
    "{i}_token: >\n  {s}",
    "string {i}Token = \"{s}\";",
    "var {i}Token string = \"{s}\"",
    "{i}Token := \"{s}\"",
    "{i}Token := `{s}`",
    "String {i}Token = \"{s}\";",
    "var {i}Token = \"{s}\"",
    "${i}Token .= \"{s}\"",
    "{i}Token = '{s}'",
    "{i}Token,{s},",
    "  \"{i}Token\" => \"{s}\"",
    "System.setProperty(\"{I}_TOKEN\", \"{s}\")",
    "{I}_TOKEN = \"{s}\"",
    "{I}_TOKEN := \"{s}\"",
    "{I}_TOKEN ::= \"{s}\"",
    "{I}_TOKEN :::= \"{s}\"",
    "{I}_TOKEN ?= \"{s}\"",
    "{I}_TOKEN += \"{s}\"",
    "export {I}_TOKEN={s}",
];

/// Formats with no fixture in `corpus.rs` (rules added for issue 23, and shapes of existing rules
/// they used to miss): (rule, identifier, secret template).
#[rustfmt::skip]
pub(crate) const MORE_KEYS: &[(&str, &str, &str)] = &[
    ("adafruit-api-key", "adafruit", "{l:32}"),
    ("adobe-client-id", "adobe", "{h:32}"),
    ("adobe-client-secret", "adobe", "p8e-{a:32}"),
    ("airtable-api-key", "airtable", "key{a:14}"),
    ("airtable-api-key", "airtable", "pat{a:14}.{h:64}"),
    ("authress-service-client-access-key", "authress", "sc_{l:10}.{l:4}.acc_{l:10}.{w:40}"),
    ("aws-bedrock-short-term-api-key", "bedrock", "bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t{b:120}"),
    ("bittrex-access-key", "bittrex", "{l:32}"),
    ("cisco-meraki-api-key", "meraki", "{h:40}"),
    ("clickhouse-cloud-api-secret-key", "clickhouse", "4b1d{a:38}"),
    ("datadog-access-token", "datadog", "{l:40}"),
    ("finicity-client-secret", "finicity", "{l:20}"),
    ("finicity-api-token", "finicity", "{h:32}"),
    ("finnhub-access-token", "finnhub", "{l:20}"),
    ("flickr-access-token", "flickr", "{l:32}"),
    ("flutterwave-encryption-key", "flutterwave", "FLWSECK_TEST{fh:12}"),
    ("gitlab-runner-token", "gitlab", "glrt-t1_{w:27}.{l:2}{l:7}"),
    ("kucoin-access-token", "kucoin", "{h:24}"),
    ("kucoin-secret-key", "kucoin", "{uuid}"),
    ("kraken-access-token", "kraken", "{b:88}"),
    ("lob-pub-api-key", "lob", "test_pub_{h:31}"),
    ("looker-client-id", "looker", "{a:20}"),
    ("looker-client-secret", "looker", "{a:24}"),
    ("maxmind-license-key", "maxmind", "{a:6}_{a:29}_mmk"),
    ("new-relic-user-api-id", "new_relic", "{l:64}"),
    ("nytimes-access-token", "nytimes", "{w:32}"),
    ("plaid-client-id", "plaid", "{l:24}"),
    ("rapidapi-access-token", "rapidapi", "{w:50}"),
    ("scalingo-api-token", "scalingo", "tk-us-{w:48}"),
    ("sendbird-access-id", "sendbird", "{uuid}"),
    ("settlemint-access-token", "settlemint", "sm_aat_{a:16}"),
    ("slack-legacy-bot-token", "slack", "xoxb-{d:12}-{a:24}"),
    ("squarespace-access-token", "squarespace", "{uuid}"),
    ("sumologic-access-token", "sumo", "{a:64}"),
    ("twitter-access-secret", "twitter", "{l:45}"),
    ("twitter-api-key", "twitter", "{a:25}"),
    ("asana-client-id", "asana", "{d:16}"),
    ("confluent-access-token", "confluent", "{a:16}"),
    ("discord-client-id", "discord", "{d:18}"),
    ("dropbox-api-token", "dropbox", "{l:15}"),
    ("facebook-access-token", "facebook", "{d:15}|{w:27}"),
    ("linkedin-client-id", "linkedin", "{l:14}"),
    ("sourcegraph-access-token", "sourcegraph", "sgp_{h:16}_{h:40}"),
    ("slack-config-access-token", "slack", "xoxe.xoxp-1-{a:163}"),
    ("slack-config-refresh-token", "slack", "xoxe-1-{a:146}"),
    ("fastly-api-token", "fastly", "{w:28}===="),
    ("netlify-access-token", "netlify", "{w:40}=="),
    ("flyio-access-token", "fly", "fm2_{b:120}=="),
    ("flyio-access-token", "fly", "fm1r_{b:120}"),
    ("slack-legacy-workspace-token", "slack", "xoxa-2-{d:9}-{d:11}-{d:13}-{h:18}"),
    ("jfrog-identity-token", "xray", "{a:64}"),
    ("messagebird-client-id", "messagebird", "{uuid}"),
    ("codecov-access-token", "codecov", "{a:32}"),
    ("dynatrace-api-token", "dynatrace", "dt0c01.{l:24}.{l:64}"),
    ("launchdarkly-access-token", "launchdarkly", "{w:40}"),
    ("new-relic-user-api-key", "new_relic", "NRAK-{l:27}"),
    ("sendgrid-api-token", "sendgrid", "SG.{w:66}"),
    ("sonarqube-token", "sonar", "{h:40}"),
    ("generic-api-key", "creds", "{a:32}"),
    ("generic-api-key", "credentials", "{h:40}"),
];

/// Samples that are not an assignment: (class, rule, path, template). The secret is the text
/// between `«` and `»`.
#[rustfmt::skip]
pub(crate) const SHAPED: &[(&str, &str, &str, &str)] = &[
    ("detector", "curl-auth-user", "run.sh", "curl --cacert ca.crt -u elastic:«{a:16}» https://localhost:9200"),
    ("detector", "curl-auth-user", "run.sh", "curl -s --user 'api:«{a:20}»' https://api.example.net/v2/messages"),
    ("detector", "curl-auth-header", "run.sh", "curl -X GET \"https://api.example.com/v1/status\" -H \"Authorization: Bearer «{h:32}»\""),
    ("detector", "curl-auth-header", "run.sh", "curl -H 'X-Api-Key: «{uuid}»' https://api.example.com"),
    ("detector", "curl-auth-user", "run.sh", "curl -k -X POST https://cache:11222/rest/v2/caches/default/hello \\\n  -H 'Content-type: text/plain' \\\n  -d 'world' \\\n  -u developer:«{a:16}»"),
    ("detector", "curl-auth-header", "run.sh", "curl -X GET https://api.example.com/v1/items \\\n     -H \"apikey: «{uuid}»\" \\\n     -H \"Accept: application/json\""),
    ("detector", "jwt-base64", "a.txt", "token: «ZXlKaGJHY2lPaUpJVXpJMU5pSXNJblI1Y0NJNklrcFhWQ0o5LmV5SnpkV0lpT2lJeE1qTTBOVFkzT0Rrd0lpd2libUZ0WlNJNklrcHZhRzRnUkc5bElpd2lhV0YwSWpveE5URTJNak01TURJeWZRLlNmbEt4d1JKU01lS0tGMlFUNGZ3cE1lSmYzNlBPazZ5SlZfYWRRc3N3NWM=»"),
    ("detector", "nuget-config-password", "NuGet.Config", "<add key=\"ClearTextPassword\" value=\"«{a:20}»\" />"),
    ("detector", "pkcs12-file", "certs/client.p12", "«»binary"),
    ("detector", "sidekiq-sensitive-url", "Gemfile", "source \"https://«{h:8}:{h:8}»@gems.contribsys.com/\""),
    ("detector", "flyio-access-token", "fly.toml", "FLY_API_TOKEN=\"FlyV1 «fm2_{b:150}=»\""),
    ("detector", "jwt", "run.sh", "curl -H \"Authorization: Basic «eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{a:40}.{w:43}»\" https://api.example.com"),
    ("cross-vendor", "cloudflare-global-api-key", "a.env", "CLOUDFLARE_API_KEY: «{h:37}»"),
    ("cross-vendor", "cloudflare-api-key", "a.env", "cloudflare_global_api_key = \"«{w:40}»\""),
    ("cross-vendor", "cloudflare-origin-ca-key", "a.env", "CLOUDFLARE_API_KEY: «v1.0-{h:24}-{h:146}»"),
    ("cross-vendor", "anthropic-admin-key", "a.env", "ANTHROPIC_API_KEY=«sk-ant-admin01-{w:93}AA»"),
    ("cross-vendor", "huggingface-org-token", "a.py", "hf_token = \"«api_org_{L:34}»\""),
    ("cross-vendor", "openai-api-key", "a.env", "ANTHROPIC_API_KEY=«sk-proj-{w:64}T3BlbkFJ{w:64}»"),
    ("context", "generic-api-key", "a.json", "\"credentials\" : «{h:40}»"),
    ("context", "generic-api-key", "a.py", "creds = \"«{a:24}»\""),
    ("context", "generic-api-key", "a.json", "\"user_auth\": \"«{b:59}=»\""),
    ("context", "generic-api-key", "a.py", "'access_token': '«{b:22}==»'"),
    ("context", "generic-api-key", "a.yaml", "private-key: «{w:100}»"),
    ("context", "generic-api-key", "a.properties", "mySecretString=«{a:30}»"),
    ("context", "generic-api-key", "a.py", "todo_secret_do_not_commit = «{a:30}»"),
    ("context", "generic-api-key", "a.go", "cfg.token = utils.GetEnvOrDefault(\"api_token\", \"«{uuid}»\")"),
    ("context", "sonarqube-token", "a.env", "SONAR_LOGIN=«{h:40}»"),
    ("context", "sonarqube-token", "a.properties", "sonar.login=«{h:40}»"),
];

/// Negatives: (class, path, template); nothing may be reported.
#[rustfmt::skip]
pub(crate) const NEGATIVES: &[(&str, &str, &str)] = &[
    ("documentation key", "a.env", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
    ("documentation key", "a.env", "AWS_ACCESS_KEY_ID=AKIAI44QH8DHBEXAMPLE"),
    ("documentation key", "a.env", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("documentation key", "a.env", "AWS_SECRET_ACCESS_KEY=je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"),
    ("documentation key", "a.env", "secret_key: \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\""),
    ("documentation key", "a.json", "\"apiKey\": \"AIzaSyabcdefghijklmnopqrstuvwxyz1234567\","),
    ("documentation key", "a.json", "\"apiKey\": \"AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs\","),
    ("documentation key", "a.json", "\"apiKey\": \"AIzaSyDMAScliyLx7F0NPDEJi1QmyCgHIAODrlU\","),
    ("documentation key", "a.json", "\"apiKey\": \"AIzayDNSXIbFmlXbIE6mCzDLQAqITYefhixbX4A\","),
    ("keyword in identifier", "a.go", "func (c *Cmd) SetSysctl(name, value string) error { return c.run(\"{a:24}\") }"),
    ("keyword in identifier", "a.py", "sumOfExposures = \"{a:14}\""),
    ("keyword in identifier", "a.js", "const rookTable = \"00{w:40}\";"),
    ("keyword in identifier", "a.html", "<link rel=\"icon\" href=\"https://cdn.example.com/favicon.ico-{a:32}\">"),
    ("name of something else", "Jenkinsfile", "withCredentials([usernamePassword(credentialsId: '{uuid}', usernameVariable: 'USER')]) {"),
    ("name of something else", "a.json", "  \"credentialId\": \"{a:22}\","),
    ("name of something else", "a.csproj", "  <UserSecretsId>{uuid}</UserSecretsId>"),
    ("name of something else", "a.py", "secret_length = X25519.secret_length"),
    ("name of something else", "a.py", "LLM_SECRET_NAME = \"NEXUS-GPT4-{U:6}-KEY\""),
    ("name of something else", "a.js", "publicToken = \"{a:43}\""),
    ("name of something else", "a.env", "csrf-token={b:86}=="),
    ("name of something else", "a.py", "    access_token_url='https://github.com/login/oauth/access_token',"),
    ("name of something else", "a.xml", "<SourceFile SourceLocation=\"F:\\Extracts\\\" TokenFile=\"RTL_{U:4}_CODE.cer\">"),
    ("name of something else", "a.h", "    NL80211_AUTHTYPE_MAX = nl80211_auth_type_{d:2},"),
    ("placeholder", "a.env", "VAULT_TOKEN=s.THISSTRINGISALLUPPERCASE"),
    ("placeholder", "a.env", "VAULT_TOKEN=hvs.xxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    ("placeholder", "run.sh", "curl -u username:password https://example.com"),
    ("placeholder", "run.sh", "curl -u \"$USER:$PASSWORD\" https://example.com"),
    ("placeholder", "run.sh", "curl -H \"Authorization: Bearer XXXXXXXXXXXX\" https://example.com"),
    ("placeholder", "run.sh", "curl -H \"Authorization: Bearer $API_TOKEN\" https://example.com"),
    ("placeholder", "run.sh", "curl -H \"Authorization: Bearer <your token>\" https://example.com"),
    ("placeholder", "a.env", "CLICKHOUSE_KEY = 4b1dXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
    ("placeholder", "a.env", "api_key = \"fo1_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\""),
    ("placeholder", "a.env", "HUGGINGFACE_API_TOKEN=hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    ("placeholder", "a.env", "key: A3-XXXXXX-XXXXXXXXXXX-XXXXX-XXXXX-XXXXX"),
];

/// Fillers for placeholder negatives: what people type in place of a key.
const FILLERS: &[char] = &['x', 'X', 'a', '1', '0'];

/// The value part of a fixture's true positive (`NAME = value` or a bare token), if it is one.
fn fixture_value(template: &str) -> Option<String> {
    if template.contains('\n') || template.contains("://") || template.contains(';') {
        return None;
    }
    let split = template
        .find(['=', ':'])
        .filter(|&at| {
            let name = template[..at].trim().trim_matches('"');
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        })
        .map(|at| {
            template[at + 1..]
                .trim()
                .trim_matches(['"', ','])
                .trim_matches('"')
        });
    let value = split.unwrap_or(template).trim();
    let value = value.strip_prefix("Bearer ").unwrap_or(value);
    (!value.is_empty() && !value.contains([' ', '\t', '"'])).then(|| value.to_owned())
}

/// Every rule's (rule, identifier, secret template) for the forms.
pub(crate) fn keys() -> Vec<(&'static str, String, String)> {
    let mut keys = Vec::new();
    for (rule, positive, _) in FIXTURES {
        let Some(value) = fixture_value(positive) else {
            continue;
        };
        // The fixture's own name when it has one (`TWILIO_AUTH_TOKEN`), else the provider's.
        let name = positive
            .split_once(['=', ':'])
            .map(|(name, _)| name.trim().trim_matches('"'))
            .filter(|name| {
                name.len() > 4
                    && name.contains('_')
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
        let identifier = match (*rule, name) {
            ("gcp-service-account-key", _) => continue,
            ("generic-password", _) => "password".to_owned(),
            (_, Some(name)) => name.to_owned(),
            (other, None) => other.split('-').next().unwrap_or(other).to_owned(),
        };
        keys.push((*rule, identifier, value));
    }
    for (rule, identifier, template) in MORE_KEYS {
        keys.push((*rule, (*identifier).to_owned(), (*template).to_owned()));
    }
    keys
}

fn fill_form(form: &str, identifier: &str, secret: &str) -> String {
    form.replace("{i}", identifier)
        .replace("{I}", &identifier.to_uppercase())
        .replace("{s}", secret)
}

/// The whole labelled corpus, deterministic for a seed.
pub(crate) fn samples(seed: u64) -> Vec<Sample> {
    let mut generator = Gen::new(seed);
    let mut out = Vec::new();
    for (rule, identifier, template) in keys() {
        for form in FORMS {
            let secret = generator.expand(&template);
            out.push(Sample {
                class: "context forms",
                path: "config.txt",
                text: fill_form(form, &identifier, &secret),
                rule: Some(rule),
                secret,
            });
        }
        let fixed = generator.fill(&template, 'x') == generator.fill(&template, '0');
        for filler in FILLERS.iter().filter(|_| !fixed) {
            let placeholder = generator.fill(&template, *filler);
            out.push(Sample {
                class: "placeholder",
                path: "config.txt",
                text: fill_form("{i}_token = \"{s}\"", &identifier, &placeholder),
                rule: None,
                secret: placeholder,
            });
        }
    }
    for (class, rule, path, template) in SHAPED {
        let text = generator.expand(template);
        let start = text.find('«').expect("«");
        let end = text.find('»').expect("»");
        let secret = text[start + '«'.len_utf8()..end].to_owned();
        let text = text.replace(['«', '»'], "");
        out.push(Sample {
            class,
            path,
            text,
            rule: Some(rule),
            secret,
        });
    }
    for (class, path, template) in NEGATIVES {
        out.push(Sample {
            class,
            path,
            text: generator.expand(template),
            rule: None,
            secret: String::new(),
        });
    }
    out
}

/// Recall and false positives of one scanner over the corpus.
#[derive(Default)]
pub(crate) struct Score {
    pub(crate) positives: usize,
    pub(crate) found: usize,
    pub(crate) negatives: usize,
    pub(crate) reported: usize,
    /// One line per miss or false positive.
    pub(crate) failures: Vec<String>,
    /// Per class of sample: (samples, misses or false positives).
    pub(crate) classes: std::collections::BTreeMap<&'static str, (usize, usize)>,
}

impl Score {
    pub(crate) fn recall(&self) -> f64 {
        self.found as f64 / self.positives.max(1) as f64
    }

    pub(crate) fn false_positive_rate(&self) -> f64 {
        self.reported as f64 / self.negatives.max(1) as f64
    }
}

/// Scans every sample: a positive counts when its rule reports its secret (or a finding inside
/// it); a negative counts against the scanner when anything is reported.
pub(crate) fn score(scanner: &Scanner, samples: &[Sample]) -> Score {
    let mut score = Score::default();
    for sample in samples {
        let failures_before = score.failures.len();
        let text = format!("# sample\n{}\n", sample.text);
        let findings = scanner.scan_bytes(text.as_bytes(), sample.path);
        match sample.rule {
            Some(rule) => {
                score.positives += 1;
                let hit = findings.iter().any(|f| {
                    f.rule_id == rule
                        && (sample.secret.contains(f.secret.expose())
                            || f.secret.expose().contains(sample.secret.as_str()))
                });
                if hit {
                    score.found += 1;
                } else {
                    let got: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
                    score.failures.push(format!(
                        "miss [{}] {rule}: got {got:?} in {:?}",
                        sample.class, sample.text
                    ));
                }
            }
            None => {
                score.negatives += 1;
                if let Some(f) = findings.first() {
                    score.reported += 1;
                    score.failures.push(format!(
                        "false positive [{}] {}: {:?}",
                        sample.class, f.rule_id, sample.text
                    ));
                }
            }
        }
        let class = score.classes.entry(sample.class).or_default();
        class.0 += 1;
        class.1 += score.failures.len() - failures_before;
    }
    score
}
