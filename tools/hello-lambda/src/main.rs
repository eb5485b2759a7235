//! The smallest Lambda function on the same runtime crates as ours (`lambda_runtime` on a
//! current-thread Tokio runtime, default tracing subscriber): it answers every event with a
//! 200 API Gateway response `{"hello":"world"}` and does nothing at init. `benches/api.rs` cold-starts it beside the real
//! functions, so the distance between the two rows is what our init costs (config, pools, TLS).

use shared::lambda_runtime::{self, LambdaEvent, service_fn};
use shared::serde_json::{Value, json};

fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let runtime = shared::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, lambda_runtime::Error>(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": r#"{"hello":"world"}"#
        }))
    })))
}
