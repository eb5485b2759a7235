//! See the library (`src/lib.rs`) and `local-queue --help`.

use std::process::ExitCode;

use local_queue::settings::{self, Parsed};
use shared::platform::config::ProcessEnv;

fn main() -> ExitCode {
    let settings = match settings::parse(std::env::args().skip(1), &ProcessEnv) {
        Ok(Parsed::Run(settings)) => settings,
        Ok(Parsed::Help) => {
            print!("{}", settings::usage());
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("local-queue: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match shared::tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("local-queue: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(local_queue::run(*settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("local-queue: {err}");
            ExitCode::FAILURE
        }
    }
}
