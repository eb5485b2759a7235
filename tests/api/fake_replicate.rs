//! A stateful fake of Replicate's HTTP API, mounted on a wiremock server: creates make real
//! prediction records (with the input echoed back, as Replicate does), `GET /v1/predictions` lists
//! them newest first with `created_after` and cursor pages, polls move them to `succeeded`, cancels
//! cancel. Each create can be told how to answer, to play the provider's ordinary misbehaviour:
//! a 502 or an unreadable body after the prediction was made, an answer slower than the client
//! waits, an account refusal. The worker under test cannot tell it from the real API's shapes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// How the fake answers one create.
#[derive(Debug, Clone)]
pub enum CreateAnswer {
    /// 201 with the new prediction.
    Created,
    /// The prediction is made, but the client gets a 502.
    CreatedThenBadGateway,
    /// The prediction is made, but the 200 body is not JSON.
    CreatedThenUnreadable,
    /// The prediction is made, and the answer comes after `delay` (longer than the client waits:
    /// the connection is given up during `Prefer: wait`).
    CreatedThenSlow(Duration),
    /// Refused with this status and detail; nothing is made.
    Refused(u16, &'static str),
}

#[derive(Debug, Clone)]
struct FakePrediction {
    id: String,
    model: String,
    input: Value,
    status: &'static str,
    created_at: chrono::DateTime<chrono::Utc>,
    polls_left: u32,
}

#[derive(Debug, Default)]
struct State {
    base: String,
    output_url: String,
    predictions: Vec<FakePrediction>,
    script: VecDeque<CreateAnswer>,
    /// Every API call answers this status (an account fault) while set.
    account_fault: Option<(u16, &'static str)>,
    /// Polls a new prediction answers `processing` before it succeeds.
    polls_before_done: u32,
    page_size: usize,
    creates_received: usize,
    cancels_received: Vec<String>,
}

/// A handle on the fake; cheap to clone.
#[derive(Clone)]
pub struct FakeReplicate(Arc<Mutex<State>>);

impl FakeReplicate {
    /// Mounts the fake on `server` (every `/v1/` path). New predictions succeed with `output_url`.
    pub async fn mount(server: &MockServer, output_url: &str) -> FakeReplicate {
        let fake = FakeReplicate(Arc::new(Mutex::new(State {
            base: server.uri(),
            output_url: output_url.to_string(),
            page_size: 100,
            ..State::default()
        })));
        Mock::given(path_regex("^/v1/"))
            .respond_with(fake.clone())
            .mount(server)
            .await;
        fake
    }

    /// The next creates answer like this, in order; after them, `Created`.
    pub fn script(&self, answers: impl IntoIterator<Item = CreateAnswer>) {
        self.0.lock().unwrap().script.extend(answers);
    }

    pub fn set_account_fault(&self, fault: Option<(u16, &'static str)>) {
        self.0.lock().unwrap().account_fault = fault;
    }

    pub fn set_polls_before_done(&self, polls: u32) {
        self.0.lock().unwrap().polls_before_done = polls;
    }

    pub fn set_page_size(&self, size: usize) {
        self.0.lock().unwrap().page_size = size.max(1);
    }

    /// Predictions that exist (whatever the client was told).
    pub fn predictions_made(&self) -> usize {
        self.0.lock().unwrap().predictions.len()
    }

    pub fn creates_received(&self) -> usize {
        self.0.lock().unwrap().creates_received
    }

    pub fn cancels(&self) -> Vec<String> {
        self.0.lock().unwrap().cancels_received.clone()
    }

    /// (id, status) of every prediction, oldest first.
    pub fn statuses(&self) -> Vec<(String, String)> {
        let state = self.0.lock().unwrap();
        state
            .predictions
            .iter()
            .map(|p| (p.id.clone(), p.status.to_string()))
            .collect()
    }

    /// The input the model was given for prediction `index` (creation order).
    pub fn input(&self, index: usize) -> Value {
        self.0.lock().unwrap().predictions[index].input.clone()
    }

    /// Puts a prediction on the account as if some earlier create had made it.
    pub fn add_prediction(&self, input: Value, status: &'static str) -> String {
        let mut state = self.0.lock().unwrap();
        let id = format!("fake{}", state.predictions.len() + 1000);
        state.predictions.push(FakePrediction {
            id: id.clone(),
            model: "qwen/qwen-image-edit".into(),
            input,
            status,
            created_at: chrono::Utc::now(),
            polls_left: 1_000_000,
        });
        id
    }
}

fn object(state: &State, p: &FakePrediction) -> Value {
    let done = matches!(p.status, "succeeded" | "failed" | "canceled" | "aborted");
    json!({
        "id": p.id,
        "model": p.model,
        "version": "hidden",
        "input": p.input,
        "logs": "",
        "output": if p.status == "succeeded" { json!([state.output_url]) } else { Value::Null },
        "error": Value::Null,
        "status": p.status,
        "source": "api",
        "data_removed": false,
        "created_at": p.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "started_at": if p.status == "starting" { Value::Null } else { json!(p.created_at.to_rfc3339()) },
        "completed_at": if done { json!(chrono::Utc::now().to_rfc3339()) } else { Value::Null },
        "urls": {
            "get": format!("{}/v1/predictions/{}", state.base, p.id),
            "cancel": format!("{}/v1/predictions/{}/cancel", state.base, p.id),
        },
        "metrics": if p.status == "succeeded" { json!({"predict_time": 4.5}) } else { json!({}) },
    })
}

fn error(status: u16, detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"title": "error", "detail": detail, "status": status}))
}

impl Respond for FakeReplicate {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        if let Some((status, detail)) = state.account_fault {
            return error(status, detail);
        }
        let path = request.url.path().to_string();
        let segments: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
        match (request.method.as_str(), segments.as_slice()) {
            ("POST", ["models", owner, name, "predictions"]) => {
                state.creates_received += 1;
                let answer = state.script.pop_front().unwrap_or(CreateAnswer::Created);
                if let CreateAnswer::Refused(status, detail) = answer {
                    return error(status, detail);
                }
                let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let prediction = FakePrediction {
                    id: format!("fake{}", state.predictions.len() + 1),
                    model: format!("{owner}/{name}"),
                    input: body["input"].clone(),
                    status: "starting",
                    created_at: chrono::Utc::now(),
                    polls_left: state.polls_before_done,
                };
                let created = object(&state, &prediction);
                state.predictions.push(prediction);
                match answer {
                    CreateAnswer::Created => ResponseTemplate::new(201).set_body_json(created),
                    CreateAnswer::CreatedThenBadGateway => error(502, "Bad Gateway"),
                    CreateAnswer::CreatedThenUnreadable => {
                        ResponseTemplate::new(200).set_body_raw("<html>upstream reset</html>", "text/html")
                    }
                    CreateAnswer::CreatedThenSlow(delay) => {
                        ResponseTemplate::new(201).set_body_json(created).set_delay(delay)
                    }
                    CreateAnswer::Refused(..) => unreachable!(),
                }
            }
            ("GET", ["predictions"]) => {
                let query: std::collections::HashMap<String, String> = request.url.query_pairs().into_owned().collect();
                let after = query
                    .get("created_after")
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&chrono::Utc));
                let offset: usize = query.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
                let newest_first: Vec<&FakePrediction> = state
                    .predictions
                    .iter()
                    .rev()
                    .filter(|p| after.is_none_or(|after| p.created_at >= after))
                    .collect();
                let page: Vec<Value> = newest_first
                    .iter()
                    .skip(offset)
                    .take(state.page_size)
                    .map(|p| object(&state, p))
                    .collect();
                let next = (offset + state.page_size < newest_first.len()).then(|| {
                    let mut next = request.url.clone();
                    next.query_pairs_mut()
                        .clear()
                        .extend_pairs(query.iter().filter(|(k, _)| k.as_str() != "cursor"))
                        .append_pair("cursor", &(offset + state.page_size).to_string());
                    next.to_string()
                });
                ResponseTemplate::new(200)
                    .set_body_json(json!({"next": next, "previous": Value::Null, "results": page}))
            }
            ("GET", ["predictions", id]) => {
                let Some(index) = state.predictions.iter().position(|p| p.id == *id) else {
                    return error(404, "Not found.");
                };
                let p = &mut state.predictions[index];
                if matches!(p.status, "starting" | "processing") {
                    if p.polls_left == 0 {
                        p.status = "succeeded";
                    } else {
                        p.polls_left -= 1;
                        p.status = "processing";
                    }
                }
                let p = state.predictions[index].clone();
                ResponseTemplate::new(200).set_body_json(object(&state, &p))
            }
            ("POST", ["predictions", id, "cancel"]) => {
                state.cancels_received.push(id.to_string());
                let Some(index) = state.predictions.iter().position(|p| p.id == *id) else {
                    return error(404, "Not found.");
                };
                let p = &mut state.predictions[index];
                if matches!(p.status, "starting" | "processing") {
                    p.status = "canceled";
                }
                let p = state.predictions[index].clone();
                ResponseTemplate::new(200).set_body_json(object(&state, &p))
            }
            _ => error(404, "Not found."),
        }
    }
}
