//! `dev-token`: prints an RS256 access token signed by the local development issuer.
//!
//! The key (`dev/issuer/dev-signing-key.pem`, kid `dev-key-1`) is public and for local
//! development and tests only. Deployed stacks never trust it: they refuse http issuers, and the
//! local issuer is `http://127.0.0.1:9001/` (see dev/issuer/README.md).
//!
//! Usage: `scripts/dev-token [--sub SUB] [--email ADDRESS [--email-unverified]] [--ttl SECONDS]
//! [--key PEM]`; issuer and audience come
//! from `AUTH0_ISSUER` / `AUTH0_AUDIENCE` (the values `scripts/dev` uses are the defaults).

use std::path::PathBuf;
use std::process::ExitCode;

use shared::chrono::Utc;
use shared::jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use shared::serde_json::json;

const KID: &str = "dev-key-1";
const DEFAULT_ISSUER: &str = "http://127.0.0.1:9001/";
const DEFAULT_AUDIENCE: &str = "https://api.realstaging.local";
const DEFAULT_SUB: &str = "auth0|dev-user";
const DEFAULT_TTL: i64 = 3600;
const MAX_TTL: i64 = 86_400;

fn default_key_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dev/issuer/dev-signing-key.pem")
}

fn usage() -> String {
    format!(
        "\
Usage: dev-token [--sub SUB] [--email ADDRESS [--email-unverified]] [--ttl SECONDS] [--key PATH]

Prints an RS256 access token signed with the local development key (kid {KID}),
for the local stack started by scripts/dev. Development and tests only.

Options:
  --sub SUB        subject, the user identity    [default: {DEFAULT_SUB}]
  --email ADDRESS  add the `email` claim with `email_verified: true`, as the Auth0 Action of
                   docs/admin.md does (the API records it as the user's verified e-mail)
  --email-unverified  the same address with `email_verified: false`
  --ttl SECONDS    lifetime, 1 to {MAX_TTL} seconds  [default: {DEFAULT_TTL}]
  --key PATH       PKCS#8 PEM RSA private key    [default: dev/issuer/dev-signing-key.pem]
  -h, --help       show this help

Environment:
  AUTH0_ISSUER     iss claim   [default: {DEFAULT_ISSUER}]
  AUTH0_AUDIENCE   aud claim   [default: {DEFAULT_AUDIENCE}]

Example:
  TOKEN=$(scripts/dev-token --sub 'auth0|alice')
  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:9000/api/v1/user/profile
"
    )
}

struct Args {
    sub: String,
    email: Option<String>,
    email_verified: bool,
    ttl: i64,
    key: PathBuf,
}

enum Parsed {
    Run(Args),
    Help,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut args = Args {
        sub: DEFAULT_SUB.to_string(),
        email: None,
        email_verified: true,
        ttl: DEFAULT_TTL,
        key: default_key_path(),
    };
    while let Some(arg) = argv.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--sub" => {
                let sub = value("--sub")?;
                if sub.trim().is_empty() {
                    return Err("--sub must not be empty".into());
                }
                args.sub = sub;
            }
            "--ttl" => {
                let raw = value("--ttl")?;
                let ttl: i64 = raw
                    .parse()
                    .map_err(|_| format!("--ttl `{raw}` is not a whole number of seconds"))?;
                if !(1..=MAX_TTL).contains(&ttl) {
                    return Err(format!("--ttl must be between 1 and {MAX_TTL} seconds"));
                }
                args.ttl = ttl;
            }
            "--key" => args.key = PathBuf::from(value("--key")?),
            "--email" => args.email = Some(value("--email")?),
            "--email-unverified" => args.email_verified = false,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if !args.email_verified && args.email.is_none() {
        return Err("--email-unverified needs --email".into());
    }
    Ok(Parsed::Run(args))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn mint(args: &Args) -> Result<String, String> {
    let pem = std::fs::read(&args.key).map_err(|e| format!("cannot read key {}: {e}", args.key.display()))?;
    let key = EncodingKey::from_rsa_pem(&pem)
        .map_err(|e| format!("{} is not an RSA private key in PEM form: {e}", args.key.display()))?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.to_string());
    let now = Utc::now().timestamp();
    let mut claims = json!({
        "iss": env_or("AUTH0_ISSUER", DEFAULT_ISSUER),
        "aud": env_or("AUTH0_AUDIENCE", DEFAULT_AUDIENCE),
        "sub": args.sub,
        "iat": now,
        "exp": now + args.ttl,
    });
    if let Some(email) = &args.email {
        claims["email"] = json!(email);
        claims["email_verified"] = json!(args.email_verified);
    }
    encode(&header, &claims, &key).map_err(|e| format!("cannot sign the token: {e}"))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("dev-token: {problem}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    match mint(&args) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("dev-token: {problem}");
            ExitCode::FAILURE
        }
    }
}
