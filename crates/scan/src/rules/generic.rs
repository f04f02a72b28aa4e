//! Private keys, JWTs, connection strings, Vault and Ward tokens, and generic assignments.

use super::{ASSIGN_QUOTED_ARGS, VALUE_END, allowing, name_start, raw, token, with_entropy};
use crate::rule::{Allowlist, RegexTarget, Rule};

/// Names under which a password is assigned.
const PASSWORD_NAMES: &str = "password|passwd|passphrase|pwd|pass";
/// Names under which other secrets are assigned.
const SECRET_NAMES: &str = "secret|token|api_key|apikey|api-key|access_key|accesskey|auth|credential|creds|private_key|private-key|client_secret";
/// A value with no quotes, spaces or call syntax; long enough to be a credential. It does not
/// start like a reference, pointer or path continuation (`&self.token`, `*key`, `::Name`).
const GENERIC_VALUE: &str = r"[A-Za-z0-9!#$%+./?@^_~-][A-Za-z0-9!#$%&*+./:=?@^_~-]";
/// Values that read like code or configuration references rather than secrets: identifiers,
/// dotted paths and all-lowercase words, which real credentials almost never are.
const CODE_LIKE: &[&str] = &[
    r"^[A-Za-z_.\-]+$",
    r"^[a-z0-9_.\-]*[a-z]\(\)$",
    r"(?i)^(?:true|false|null|none|env|environ)\b",
    // A URL, or the rest of one after `https:`; credentials inside URLs have rules of their own.
    r"(?i)^(?:[a-z][a-z0-9+.-]*:)?//",
    // A path in code (`proc_macro::TokenStream`), an attribute (`params.secret_len`), a private,
    // generated or snake-case name (`_bindgen_ty_24`, `nl80211_auth_type`), a constant's name
    // (`MLKEM768_SECRET_KEY_BYTES`), a file's path (`tests/keys/a.pem`) or name (`rsa.pk8`).
    r"::",
    r"^[a-z_]+\.[a-z_]+",
    r"^_[A-Za-z0-9_]*$",
    r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$",
    r"(?i)^[\w.-]+\.(?:pem|key|pk8|p12|pfx|crt|cer|der|pub|json|ya?ml|toml|txt|env)$",
    r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$",
    r"^[A-Za-z0-9_./-]*/[A-Za-z0-9_.-]+\.[A-Za-z]{1,5}$",
];

/// Names (the start of a generic rule's match) that hold something about a secret rather than
/// the secret: its id, name, URL, file, length... (`credentialsId`, `secret_length`,
/// `TokenFile`, `access_token_url`).
const NOT_A_SECRET_NAME: &[&str] = &[
    r#"^.?[^\n:=,(>'"\\]*?(?:[_.-](?i:ids?|names?|urls?|uris?|files?|paths?|length|len|size|type|version|endpoint|count)|[a-z0-9](?:Ids?|IDS?|Names?|NAMES?|Urls?|URLS?|Uris?|Files?|FILES?|Paths?|PATHS?|Length|LENGTH|Len|Size|SIZE|Type|TYPE|Version|Endpoint|Count))['"\\ \t]*(?:[:=,(>?+.]|$)"#,
];

/// Lines naming a token that is public by design (the match starts at `Token` in `publicToken`).
const PUBLIC_TOKEN: &str = r"(?i)(?:public|csrf|xsrf)[_.-]?(?:token|key)";

/// `NAME [suffix] = value`. The name must start a word or a camel-case part (see
/// [`name_start`]) and may be plural; a suffix may not start with a lowercase letter. So
/// `db_password`, `dbPasswordHash` and `credentials` count, `uffpwd` and `tokenizer` not.
fn assignment(names: &str, min: usize) -> String {
    format!(
        r#"{}s?(?:[0-9A-Z_. \t-][0-9A-Za-z_. \t-]{{0,19}})?{ASSIGN_QUOTED_ARGS}({GENERIC_VALUE}{{{},127}}){VALUE_END}"#,
        name_start(names),
        min - 1
    )
}

pub(super) fn rules() -> Vec<Rule> {
    vec![
        raw(
            "private-key",
            "PEM private key (RSA, EC, DSA, PKCS#8, encrypted)",
            r"(-----BEGIN (?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----(?:[A-Za-z0-9+/=\s:,-]|\\[nr]){64,}?-----END (?:RSA |EC |DSA |ENCRYPTED )?PRIVATE KEY-----)",
            &["private key-----"],
        ),
        raw(
            "openssh-private-key",
            "OpenSSH private key",
            r"(-----BEGIN OPENSSH PRIVATE KEY-----(?:[A-Za-z0-9+/=\s]|\\[nr]){64,}?-----END OPENSSH PRIVATE KEY-----)",
            &["openssh private key-----"],
        ),
        raw(
            "pgp-private-key",
            "PGP private key block",
            r"(-----BEGIN PGP PRIVATE KEY BLOCK-----(?:[A-Za-z0-9+/=\s:.,()-]|\\[nr]){64,}?-----END PGP PRIVATE KEY BLOCK-----)",
            &["pgp private key block-----"],
        ),
        Rule {
            id: "pkcs12-file".to_owned(),
            description: "PKCS#12 key store (.p12, .pfx): a private key and its certificate"
                .to_owned(),
            path: Some(r"(?i)\.(?:p12|pfx)$".to_owned()),
            ..Rule::default()
        },
        raw(
            "putty-private-key",
            "PuTTY private key file",
            r"(PuTTY-User-Key-File-[23]: [a-z0-9-]+)",
            &["putty-user-key-file-"],
        ),
        raw(
            "jwt",
            "JSON Web Token",
            r#"(?-u:\b)(ey[A-Za-z0-9]{17,}\.ey[A-Za-z0-9/\\_-]{17,}\.(?:[A-Za-z0-9/\\_-]{10,}={0,2})?)(?:['|" \t\x60;,)<\\]|(?m:$))"#,
            &["eyj"],
        ),
        raw(
            "postgres-connection-string",
            "PostgreSQL connection string with a password",
            r#"(?i:postgres(?:ql)?(?:\+[a-z0-9]+)?)://[^\n:@/ \t'"]+:([^\n@/ \t'"]{3,})@[^\n \t'"/]+"#,
            &["postgres"],
        ),
        raw(
            "mysql-connection-string",
            "MySQL / MariaDB connection string with a password",
            r#"(?i:mysql|mariadb)(?:\+[a-z0-9]+)?://[^\n:@/ \t'"]+:([^\n@/ \t'"]{3,})@[^\n \t'"/]+"#,
            &["mysql", "mariadb"],
        ),
        raw(
            "mongodb-connection-string",
            "MongoDB connection string with a password",
            r#"(?i:mongodb(?:\+srv)?)://[^\n:@/ \t'"]+:([^\n@/ \t'"]{3,})@[^\n \t'"/]+"#,
            &["mongodb"],
        ),
        raw(
            "redis-connection-string",
            "Redis connection string with a password",
            r#"(?i:rediss?)://[^\n:@/ \t'"]*:([^\n@/ \t'"]{3,})@[^\n \t'"/]+"#,
            &["redis"],
        ),
        raw(
            "amqp-connection-string",
            "AMQP (RabbitMQ) connection string with a password",
            r#"(?i:amqps?)://[^\n:@/ \t'"]+:([^\n@/ \t'"]{3,})@[^\n \t'"/]+"#,
            &["amqp"],
        ),
        raw(
            "jdbc-connection-string",
            "JDBC URL with a password parameter",
            r#"(?i:jdbc:[a-z0-9]+:)[^\n \t'"]*?(?i:password|pwd)=([^\n;& \t'"]{3,})"#,
            &["jdbc:"],
        ),
        raw(
            "ado-net-connection-string",
            ".NET connection string with a password",
            r#"(?i:(?:Server|Data Source)=[^\n;'"]+;[^\n'"]*?(?:Password|Pwd)=)([^\n;'"]{3,})"#,
            &["password=", "pwd="],
        ),
        with_entropy(
            raw(
                "uri-credentials",
                "URL with an embedded password",
                r#"(?i:[a-z][a-z0-9+.-]{1,20})://[^\n:@/ \t'"]+:([^\n@/ \t'"]{6,})@[A-Za-z0-9.-]+"#,
                &["://"],
            ),
            2.5,
        ),
        token(
            "vault-service-token",
            "HashiCorp Vault service token",
            r"hvs\.[A-Za-z0-9_-]{24,}",
            &["hvs."],
        ),
        token(
            "vault-batch-token",
            "HashiCorp Vault batch token",
            r"hvb\.[A-Za-z0-9_-]{24,}",
            &["hvb."],
        ),
        token(
            "vault-recovery-token",
            "HashiCorp Vault recovery token",
            r"hvr\.[A-Za-z0-9_-]{24,}",
            &["hvr."],
        ),
        allowing(
            with_entropy(
                raw(
                    "vault-legacy-token",
                    "HashiCorp Vault token (legacy s. format)",
                    r"(?-u:\b)(s\.[A-Za-z0-9]{24})(?-u:\b)",
                    &[],
                ),
                3.5,
            ),
            &[
                r"^s\.[a-z]+$",
                r"^s\.[A-Z]+$",
                r"^s\.[A-Z]?[a-z]+(?:[A-Z][a-z]+)*$",
            ],
        ),
        ward_token(),
        jwt_base64(),
        raw(
            "nuget-config-password",
            "Password in a NuGet configuration file",
            r#"<add[ \t]+key=["'](?i:ClearTextPassword|Password)["'][ \t]+value=["']([^"'\n]{4,})["']"#,
            &["cleartextpassword", "key=\"password\""],
        ),
        allowing(
            with_entropy(
                raw(
                    "curl-auth-user",
                    "Password given to curl with -u / --user",
                    r#"(?-u:\b)curl\b[^\n]*?[ \t](?:-u|--user)(?:=|[ \t]{1,5})['"]?([^\s'":]{2,}:[^\s'"]{3,})"#,
                    &["curl"],
                ),
                2.0,
            ),
            &[
                r"(?i):(?:pass(?:word)?|pwd|token|secret|test|changeme|changeit|x+|\*+)$",
                r"[$<>\[\]{}]",
            ],
        ),
        with_entropy(
            raw(
                "curl-auth-header",
                "Credential in a request header given on a command line (curl -H, --header)",
                // No `curl` required on the line: long commands continue over several lines.
                r#"(?:(?m:^)|[ \t])(?:-H|--header)[ \t=]{1,5}['"](?i:authorization:[ \t]*(?:(?:basic|bearer|token|api-token)[ \t]+)?|(?:x-[a-z0-9-]*)?api-?key:[ \t]*|(?:x-[a-z0-9-]*)?token:[ \t]*)([A-Za-z0-9=~@.+/_-]{8,})['"]"#,
                &["-h '", "-h \"", "--header"],
            ),
            2.75,
        ),
        generic(
            "generic-password",
            "Password assigned in code or configuration",
            PASSWORD_NAMES,
            8,
            3.0,
        ),
        generic(
            "generic-api-key",
            "Secret, token or API key assigned in code or configuration",
            SECRET_NAMES,
            16,
            3.5,
        ),
    ]
}

/// A generic rule: `names` assigned a value of at least `min` characters and `bits` of entropy
/// that does not read like code, under a name that does not say it is something else.
fn generic(id: &str, description: &str, names: &str, min: usize, bits: f64) -> Rule {
    let keywords: Vec<&str> = names.split('|').collect();
    let mut rule = allowing(
        with_entropy(
            raw(id, description, &assignment(names, min), &keywords),
            bits,
        ),
        CODE_LIKE,
    );
    rule.allowlists.push(Allowlist {
        description: "names of things other than a secret".to_owned(),
        regexes: NOT_A_SECRET_NAME.iter().map(|r| (*r).to_owned()).collect(),
        regex_target: RegexTarget::Match,
        ..Allowlist::default()
    });
    rule.allowlists.push(Allowlist {
        description: "public tokens".to_owned(),
        regexes: vec![PUBLIC_TOKEN.to_owned()],
        regex_target: RegexTarget::Line,
        ..Allowlist::default()
    });
    rule
}

fn ward_token() -> Rule {
    use ward_api::token_format::{CHECKSUM_LEN, PREFIX, RANDOM_LEN, looks_like_token};
    let pattern = format!("{PREFIX}[0-9A-Za-z]{{{}}}", RANDOM_LEN + CHECKSUM_LEN);
    let mut rule = token("ward-token", "Ward token", &pattern, &[PREFIX]);
    rule.validator = Some(looks_like_token);
    rule
}

/// A JWT encoded once more in base64 (`ZXlK` is `eyJ` encoded): found by its prefix, kept only
/// when it decodes to a header and a payload.
fn jwt_base64() -> Rule {
    let mut rule = raw(
        "jwt-base64",
        "Base64-encoded JSON Web Token",
        r"(?-u:\b)(ZXlK[A-Za-z0-9+/]{40,}={0,2})(?:[^\n0-9A-Za-z+/=]|(?m:$))",
        &["zxlk"],
    );
    rule.validator = Some(decodes_to_jwt);
    rule
}

fn decodes_to_jwt(secret: &str) -> bool {
    use base64::Engine;
    let unpadded = secret.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(unpadded)
        .is_ok_and(|jwt| jwt.starts_with(b"eyJ") && memchr::memmem::find(&jwt, b".eyJ").is_some())
}
