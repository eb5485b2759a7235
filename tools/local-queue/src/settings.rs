//! Command line and environment of the poller. Every setting is a flag; the ones scripts/dev
//! already has in `.local/dev.env` also come from the environment.

use std::fmt;
use std::time::Duration;

use shared::platform::config::{Env, EnvSource};
use shared::reqwest::Url;

pub const DEFAULT_INVOKE_URL: &str = "http://127.0.0.1:9000";
pub const DEFAULT_WORKER: &str = "stage-worker";
pub const DEFAULT_RECONCILER: &str = "reconcile";
pub const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_RECONCILE_EVERY: u64 = 60;
const DEFAULT_BATCH_SIZE: i32 = 5;
const DEFAULT_WAIT_SECONDS: i32 = 10;
const DEFAULT_INVOKE_TIMEOUT: u64 = 900;

pub fn usage() -> String {
    format!(
        "\
Usage: local-queue [OPTIONS]

The local stand-in for AWS's SQS event source mapping and the reconciler's schedule (development
only; scripts/dev starts it). It long-polls the local queue, sends each batch to the worker as the
SQS event JSON Lambda would send, through cargo-lambda's invoke endpoint
(POST <invoke url>/2015-03-31/functions/<worker>/invocations), deletes the messages the worker
handled and leaves the ones it reports in batchItemFailures (or the whole batch, when the
invocation fails) for redelivery after the visibility timeout. Every --reconcile-every seconds it
invokes the reconciler with an EventBridge \"Scheduled Event\". One log line per batch.

It waits for cargo lambda watch to listen before it takes messages, and the first invocation of a
function compiles it (minutes on a cold target/), hence the long --invoke-timeout.

Options (environment variable in brackets):
  --queue-url URL         the job queue                        [SQS_QUEUE_URL] (required)
  --sqs-endpoint URL      the local SQS server                 [AWS_ENDPOINT_URL_SQS] (required:
                          this tool never talks to AWS itself)
  --region REGION         region of the queue and the events   [AWS_REGION] [default: {DEFAULT_REGION}]
  --invoke-url URL        cargo lambda watch                   [LOCAL_QUEUE_INVOKE_URL]
                                                               [default: {DEFAULT_INVOKE_URL}]
  --worker NAME           function that takes SQS batches      [default: {DEFAULT_WORKER}]
  --reconciler NAME       function run on the schedule         [default: {DEFAULT_RECONCILER}]
  --reconcile-every SECS  schedule period, 0 = never           [LOCAL_QUEUE_RECONCILE_EVERY]
                                                               [default: {DEFAULT_RECONCILE_EVERY}]
  --batch-size N          messages per batch, 1-10             [default: {DEFAULT_BATCH_SIZE}]
  --wait-seconds N        long-poll wait, 0-20                 [default: {DEFAULT_WAIT_SECONDS}]
  --invoke-timeout SECS   longest wait for one invocation      [default: {DEFAULT_INVOKE_TIMEOUT}]
  -h, --help              show this help

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else test/test (what moto accepts).

Example (what scripts/dev runs, with .local/dev.env in the environment):
  target/debug/local-queue --invoke-url http://127.0.0.1:9000
"
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub queue_url: Url,
    pub sqs_endpoint: Url,
    pub region: String,
    pub invoke_url: Url,
    pub worker: String,
    pub reconciler: String,
    /// `None`: never run the reconciler.
    pub reconcile_every: Option<Duration>,
    pub batch_size: i32,
    pub wait_seconds: i32,
    pub invoke_timeout: Duration,
    pub access_key_id: String,
    pub secret_access_key: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Box<Settings>),
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsError {
    UnknownArgument(String),
    MissingValue(&'static str),
    Missing {
        flag: &'static str,
        variable: &'static str,
    },
    Invalid {
        name: &'static str,
        value: String,
        expected: String,
    },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingsError::UnknownArgument(arg) => write!(f, "unknown argument {arg:?} (see --help)"),
            SettingsError::MissingValue(flag) => write!(f, "{flag} needs a value"),
            SettingsError::Missing { flag, variable } => write!(f, "{flag} (or {variable}) is required"),
            SettingsError::Invalid { name, value, expected } => {
                write!(f, "{name}: {value:?} is not valid; expected {expected}")
            }
        }
    }
}

impl std::error::Error for SettingsError {}

const FLAGS: [&str; 10] = [
    "--queue-url",
    "--sqs-endpoint",
    "--region",
    "--invoke-url",
    "--worker",
    "--reconciler",
    "--reconcile-every",
    "--batch-size",
    "--wait-seconds",
    "--invoke-timeout",
];

/// Reads `argv` (without the program name), falling back to `env` for the settings that have a
/// variable.
pub fn parse(argv: impl IntoIterator<Item = String>, env: &dyn EnvSource) -> Result<Parsed, SettingsError> {
    let mut flags: Vec<(&'static str, String)> = Vec::new();
    let mut argv = argv.into_iter();
    while let Some(arg) = argv.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Parsed::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let Some(flag) = FLAGS.iter().copied().find(|f| *f == name) else {
            return Err(SettingsError::UnknownArgument(arg));
        };
        let value = inline
            .or_else(|| argv.next())
            .ok_or(SettingsError::MissingValue(flag))?;
        flags.push((flag, value));
    }
    let flag = |name: &str| flags.iter().rev().find(|(f, _)| *f == name).map(|(_, v)| v.clone());
    let env = Env(env);
    let setting = |name: &'static str, variable: Option<&'static str>| {
        flag(name).or_else(|| variable.and_then(|v| env.optional(v)))
    };

    let url = |name: &'static str, variable: Option<&'static str>, default: Option<&str>| {
        let raw = setting(name, variable).or(default.map(str::to_string));
        let raw = raw.ok_or(SettingsError::Missing {
            flag: name,
            variable: variable.unwrap_or(""),
        })?;
        match Url::parse(&raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(url),
            _ => Err(SettingsError::Invalid {
                name,
                value: raw,
                expected: "an http(s) URL".to_string(),
            }),
        }
    };
    let number = |name: &'static str, variable: Option<&'static str>, default: u64, min: u64, max: u64| match setting(
        name, variable,
    ) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or(SettingsError::Invalid {
                name,
                value: raw,
                expected: format!("a whole number from {min} to {max}"),
            }),
    };
    let name = |flag_name: &'static str, default: &str| {
        let value = flag(flag_name).unwrap_or_else(|| default.to_string());
        if !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Ok(value)
        } else {
            Err(SettingsError::Invalid {
                name: flag_name,
                value,
                expected: "a function name (letters, digits, - and _)".to_string(),
            })
        }
    };

    let reconcile_every = number(
        "--reconcile-every",
        Some("LOCAL_QUEUE_RECONCILE_EVERY"),
        DEFAULT_RECONCILE_EVERY,
        0,
        86_400,
    )?;
    // Both come from the ranges checked above, so the conversions cannot fail.
    let batch_size = number("--batch-size", None, DEFAULT_BATCH_SIZE as u64, 1, 10)? as i32;
    let wait_seconds = number("--wait-seconds", None, DEFAULT_WAIT_SECONDS as u64, 0, 20)? as i32;
    let settings = Settings {
        queue_url: url("--queue-url", Some("SQS_QUEUE_URL"), None)?,
        sqs_endpoint: url("--sqs-endpoint", Some("AWS_ENDPOINT_URL_SQS"), None)?,
        region: setting("--region", Some("AWS_REGION")).unwrap_or_else(|| DEFAULT_REGION.to_string()),
        invoke_url: url("--invoke-url", Some("LOCAL_QUEUE_INVOKE_URL"), Some(DEFAULT_INVOKE_URL))?,
        worker: name("--worker", DEFAULT_WORKER)?,
        reconciler: name("--reconciler", DEFAULT_RECONCILER)?,
        reconcile_every: (reconcile_every > 0).then(|| Duration::from_secs(reconcile_every)),
        batch_size,
        wait_seconds,
        invoke_timeout: Duration::from_secs(number("--invoke-timeout", None, DEFAULT_INVOKE_TIMEOUT, 1, 3600)?),
        access_key_id: env.optional("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".to_string()),
        secret_access_key: env
            .optional("AWS_SECRET_ACCESS_KEY")
            .unwrap_or_else(|| "test".to_string()),
    };
    Ok(Parsed::Run(Box::new(settings)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn dev_env() -> HashMap<&'static str, &'static str> {
        [
            ("SQS_QUEUE_URL", "http://127.0.0.1:5000/123456789012/realstaging-jobs"),
            ("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:5000"),
            ("AWS_REGION", "us-east-1"),
        ]
        .into()
    }

    fn run(parsed: Result<Parsed, SettingsError>) -> Settings {
        match parsed.unwrap() {
            Parsed::Run(settings) => *settings,
            Parsed::Help => panic!("expected settings"),
        }
    }

    #[test]
    fn the_dev_environment_is_enough() {
        let settings = run(parse(args(&[]), &dev_env()));
        assert_eq!(
            settings.queue_url.as_str(),
            "http://127.0.0.1:5000/123456789012/realstaging-jobs"
        );
        assert_eq!(settings.invoke_url.as_str(), "http://127.0.0.1:9000/");
        assert_eq!(settings.worker, "stage-worker");
        assert_eq!(settings.reconciler, "reconcile");
        assert_eq!(settings.reconcile_every, Some(Duration::from_secs(60)));
        assert_eq!((settings.batch_size, settings.wait_seconds), (5, 10));
        assert_eq!(settings.invoke_timeout, Duration::from_secs(900));
        assert_eq!(
            (settings.access_key_id.as_str(), settings.secret_access_key.as_str()),
            ("test", "test")
        );
    }

    #[test]
    fn flags_win_over_the_environment() {
        let settings = run(parse(
            args(&[
                "--invoke-url=http://127.0.0.1:9100",
                "--reconcile-every",
                "0",
                "--batch-size",
                "10",
                "--worker",
                "my_worker",
                "--queue-url",
                "http://localhost:4566/000000000000/other",
            ]),
            &dev_env(),
        ));
        assert_eq!(settings.invoke_url.as_str(), "http://127.0.0.1:9100/");
        assert_eq!(settings.reconcile_every, None);
        assert_eq!(settings.batch_size, 10);
        assert_eq!(settings.worker, "my_worker");
        assert_eq!(settings.queue_url.as_str(), "http://localhost:4566/000000000000/other");
    }

    #[test]
    fn help_and_errors() {
        assert_eq!(parse(args(&["--help"]), &dev_env()), Ok(Parsed::Help));
        assert_eq!(
            parse(args(&["--bogus"]), &dev_env()),
            Err(SettingsError::UnknownArgument("--bogus".into()))
        );
        assert_eq!(
            parse(args(&["--worker"]), &dev_env()),
            Err(SettingsError::MissingValue("--worker"))
        );
        let no_endpoint: HashMap<&str, &str> = [("SQS_QUEUE_URL", "http://127.0.0.1:5000/1/q")].into();
        assert_eq!(
            parse(args(&[]), &no_endpoint),
            Err(SettingsError::Missing {
                flag: "--sqs-endpoint",
                variable: "AWS_ENDPOINT_URL_SQS"
            })
        );
        for bad in [
            &["--batch-size", "11"][..],
            &["--batch-size", "0"],
            &["--wait-seconds", "21"],
            &["--invoke-url", "127.0.0.1:9000"],
            &["--worker", "../x"],
            &["--reconcile-every", "-1"],
        ] {
            assert!(
                matches!(parse(args(bad), &dev_env()), Err(SettingsError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }
}
