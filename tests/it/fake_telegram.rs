//! A fake Telegram Bot API server on loopback, for the integration tests.
//!
//! Telegram is a third party the tests cannot reach, so the approvals bot (teloxide, long polling)
//! is pointed at this server with `Bot::set_api_url(fake.api_url().parse()?)`. It speaks the real
//! Bot API JSON for the methods the bot uses, and keeps Telegram's sharp edges: the 4096-character
//! limit, "message is not modified", unknown callback query ids, markup that fails to parse.
//!
//! A test plays the users (`user_sends_text`, `user_clicks`, `user_replies` queue updates for
//! `getUpdates`) and inspects what the bot did (`sent`, `edits`, `callback_answers`, `wait_for_*`).
//! `fail_next` makes the next call of a method fail, to test retries.
//!
//! Known differences from Telegram: no privacy mode (a group bot sees every message), no files,
//! no inline mode, `@username` chat ids are "chat not found", HTML decodes only `&lt;` `&gt;`
//! `&amp;` `&quot;`, and MarkdownV2 is checked only for unescaped reserved characters.

// The test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, FromRequest, Query, Request, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The only token the fake accepts; the bot's user id is the part before the colon.
pub const TOKEN: &str = "123456:TEST";
pub const BOT_ID: i64 = 123456;
pub const BOT_USERNAME: &str = "wingman_test_bot";
/// Telegram's limit, counted in characters of the text a user sees (after markup is parsed).
pub const MAX_TEXT_CHARS: usize = 4096;
/// Long polls are cut short so that a dispatcher shuts down quickly.
const MAX_LONG_POLL: Duration = Duration::from_secs(1);

/// A running fake. Clones share the server, which stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeTelegram {
    shared: Arc<Shared>,
    api_url: String,
    _server: Arc<ServerTask>,
}

/// A successful `sendMessage`. `text` is as the bot sent it, markup included.
#[derive(Clone, Debug, PartialEq)]
pub struct SentMessage {
    pub message_id: i64,
    pub chat_id: i64,
    pub text: String,
    pub parse_mode: Option<String>,
    pub reply_markup: Option<Value>,
    pub reply_to_message_id: Option<i64>,
}

/// A successful `editMessageText` (`text` is `Some`) or `editMessageReplyMarkup` (`text` is `None`).
/// `reply_markup: None` means the keyboard was removed, as Telegram does when an edit omits it.
#[derive(Clone, Debug, PartialEq)]
pub struct EditedMessage {
    pub chat_id: i64,
    pub message_id: i64,
    pub text: Option<String>,
    pub parse_mode: Option<String>,
    pub reply_markup: Option<Value>,
}

/// A successful `answerCallbackQuery`.
#[derive(Clone, Debug, PartialEq)]
pub struct CallbackAnswer {
    pub callback_query_id: String,
    pub text: Option<String>,
    pub show_alert: bool,
}

impl FakeTelegram {
    /// Binds 127.0.0.1 on a free port and serves in a background task.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start() -> FakeTelegram {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Telegram server");
        let address = listener
            .local_addr()
            .expect("read the fake Telegram server's address");
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .fallback(handle_request)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTelegram {
            shared,
            api_url: format!("http://{address}/"),
            _server: Arc::new(ServerTask(task)),
        }
    }

    /// The bot settings of a worker pointed at this fake, posting to the approvers' chat
    /// (`crate::helpers::APPROVER_CHAT`).
    pub fn settings(&self) -> wingman::settings::TelegramSettings {
        wingman::settings::TelegramSettings::new(
            self.token(),
            vec![crate::helpers::APPROVER_CHAT],
            Some(self.api_url()),
        )
    }

    pub fn api_url(&self) -> String {
        self.api_url.clone()
    }

    pub fn token(&self) -> &str {
        TOKEN
    }

    pub fn sent(&self) -> Vec<SentMessage> {
        self.shared.lock().sent.clone()
    }

    pub fn edits(&self) -> Vec<EditedMessage> {
        self.shared.lock().edits.clone()
    }

    pub fn callback_answers(&self) -> Vec<CallbackAnswer> {
        self.shared.lock().answers.clone()
    }

    /// The first sent message (already sent or still to come) that matches.
    ///
    /// # Panics
    /// On timeout, listing what was sent.
    pub async fn wait_for_sent(
        &self,
        predicate: impl Fn(&SentMessage) -> bool,
        timeout: Duration,
    ) -> SentMessage {
        let find = |state: &State| state.sent.iter().find(|sent| predicate(sent)).cloned();
        self.wait_for("sendMessage", timeout, find, |state| {
            format!("{:#?}", state.sent)
        })
        .await
    }

    /// # Panics
    /// On timeout, listing the edits.
    pub async fn wait_for_edit(
        &self,
        predicate: impl Fn(&EditedMessage) -> bool,
        timeout: Duration,
    ) -> EditedMessage {
        let find = |state: &State| state.edits.iter().find(|edit| predicate(edit)).cloned();
        self.wait_for("edit", timeout, find, |state| format!("{:#?}", state.edits))
            .await
    }

    /// # Panics
    /// On timeout, listing the answers.
    pub async fn wait_for_answer(
        &self,
        predicate: impl Fn(&CallbackAnswer) -> bool,
        timeout: Duration,
    ) -> CallbackAnswer {
        let find = |state: &State| {
            state
                .answers
                .iter()
                .find(|answer| predicate(answer))
                .cloned()
        };
        self.wait_for("answerCallbackQuery", timeout, find, |state| {
            format!("{:#?}", state.answers)
        })
        .await
    }

    /// The message's text after edits, as the bot sent it; `None` if it never existed or was deleted.
    pub fn message_text(&self, chat_id: i64, message_id: i64) -> Option<String> {
        self.shared
            .lock()
            .messages
            .get(&(chat_id, message_id))
            .map(|message| message.text.clone())
    }

    /// Queues a text message from a user (private chat for a positive `chat_id`, group for a
    /// negative one). Text starting with '/' carries a `bot_command` entity. Returns the update id.
    pub fn user_sends_text(&self, user_id: i64, chat_id: i64, text: &str) -> i64 {
        self.queue_user_message(user_id, chat_id, text, None)
    }

    /// Queues a message that replies to an earlier message. Returns the update id.
    ///
    /// # Panics
    /// If that message does not exist.
    pub fn user_replies(
        &self,
        user_id: i64,
        chat_id: i64,
        reply_to_message_id: i64,
        text: &str,
    ) -> i64 {
        self.queue_user_message(user_id, chat_id, text, Some(reply_to_message_id))
    }

    /// Queues a click on an inline button of a message, with the message's current text.
    /// Returns the callback query id the bot must answer.
    ///
    /// # Panics
    /// If that message does not exist.
    pub fn user_clicks(
        &self,
        user_id: i64,
        chat_id: i64,
        message_id: i64,
        callback_data: &str,
    ) -> String {
        let mut state = self.shared.lock();
        assert!(
            state.messages.contains_key(&(chat_id, message_id)),
            "user_clicks: no message {message_id} in chat {chat_id}"
        );
        state.next_callback_id += 1;
        let callback_query_id = format!("{}{:06}", BOT_ID, state.next_callback_id);
        state.open_callbacks.insert(callback_query_id.clone());
        let callback_query = json!({
            "id": callback_query_id,
            "from": user_json(user_id),
            "chat_instance": format!("instance{chat_id}"),
            "data": callback_data,
            "message": state.message_json(chat_id, message_id, true),
        });
        state.queue_update("callback_query", callback_query);
        drop(state);
        self.shared.changed.notify_waiters();
        callback_query_id
    }

    /// How often the method was called (case-insensitive), failed calls included.
    pub fn call_count(&self, method: &str) -> usize {
        self.shared
            .lock()
            .calls
            .get(&method.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// The bot's command menu, as its last `setMyCommands` set it: (command, description).
    pub fn my_commands(&self) -> Vec<(String, String)> {
        self.shared.lock().my_commands.clone()
    }

    pub fn get_updates_calls(&self) -> usize {
        self.call_count("getUpdates")
    }

    /// Updates queued and not yet confirmed by a later `getUpdates` offset.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }

    /// The next call of `method` fails with this error. A description containing
    /// "retry after N" also sets `parameters.retry_after` (teloxide's `RetryAfter`).
    /// The HTTP status is `error_code`; note that teloxide sleeps 10 s on any 5xx.
    pub fn fail_next(&self, method: &str, error_code: i64, description: &str) {
        let retry_after = description
            .rsplit_once("retry after ")
            .and_then(|(_, seconds)| seconds.trim().parse::<i64>().ok());
        let failure = ApiFailure {
            code: u16::try_from(error_code).unwrap_or(500),
            description: description.to_owned(),
            parameters: retry_after.map(|seconds| json!({ "retry_after": seconds })),
        };
        self.shared
            .lock()
            .failures
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push_back(failure);
    }

    fn queue_user_message(
        &self,
        user_id: i64,
        chat_id: i64,
        text: &str,
        reply_to: Option<i64>,
    ) -> i64 {
        let mut state = self.shared.lock();
        if let Some(reply_to) = reply_to {
            assert!(
                state.messages.contains_key(&(chat_id, reply_to)),
                "user_replies: no message {reply_to} in chat {chat_id}"
            );
        }
        let message_id =
            state.store_message(chat_id, user_json(user_id), text, None, None, reply_to);
        let mut message = state.message_json(chat_id, message_id, true);
        if text.starts_with('/') {
            let command = text.split_whitespace().next().unwrap_or(text);
            message["entities"] = json!([{ "type": "bot_command", "offset": 0, "length": command.encode_utf16().count() }]);
        }
        let update_id = state.queue_update("message", message);
        drop(state);
        self.shared.changed.notify_waiters();
        update_id
    }

    async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        find: impl Fn(&State) -> Option<T>,
        listing: impl Fn(&State) -> String,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let timed_out = {
                let state = self.shared.lock();
                if let Some(found) = find(&state) {
                    return found;
                }
                (Instant::now() >= deadline).then(|| listing(&state))
            };
            if let Some(seen) = timed_out {
                panic!("no matching {what} within {timeout:?}; seen so far:\n{seen}");
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

struct ServerTask(tokio::task::JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Woken on every change, for long polls and `wait_for_*`.
    changed: Notify,
}

impl Shared {
    /// A test that panicked while holding the lock must not hide the state from the others.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct State {
    next_update_id: i64,
    /// Delivered or not, until a `getUpdates` offset confirms them.
    updates: VecDeque<(i64, Value)>,
    /// Bumped by each `getUpdates`, so that an older long poll ends with 409 like on Telegram.
    poll_generation: u64,
    /// The last `allowed_updates` the bot asked for; Telegram drops other kinds of update.
    allowed_updates: Option<Vec<String>>,
    messages: HashMap<(i64, i64), StoredMessage>,
    last_message_id: HashMap<i64, i64>,
    sent: Vec<SentMessage>,
    edits: Vec<EditedMessage>,
    answers: Vec<CallbackAnswer>,
    next_callback_id: u64,
    /// Callback queries not yet answered; Telegram rejects a second answer.
    open_callbacks: HashSet<String>,
    calls: HashMap<String, usize>,
    failures: HashMap<String, VecDeque<ApiFailure>>,
    /// The command menu from the last `setMyCommands`: (command, description).
    my_commands: Vec<(String, String)>,
}

struct StoredMessage {
    from: Value,
    date: i64,
    text: String,
    parse_mode: Option<String>,
    reply_markup: Option<Value>,
    reply_to: Option<i64>,
    edited: bool,
}

struct ApiFailure {
    code: u16,
    description: String,
    parameters: Option<Value>,
}

type ApiResult = Result<Value, ApiFailure>;

impl State {
    fn queue_update(&mut self, kind: &str, payload: Value) -> i64 {
        self.next_update_id = self.next_update_id.max(1000) + 1;
        let update_id = self.next_update_id;
        self.updates
            .push_back((update_id, json!({ "update_id": update_id, kind: payload })));
        update_id
    }

    fn store_message(
        &mut self,
        chat_id: i64,
        from: Value,
        text: &str,
        parse_mode: Option<String>,
        reply_markup: Option<Value>,
        reply_to: Option<i64>,
    ) -> i64 {
        let message_id = self.last_message_id.entry(chat_id).or_default();
        *message_id += 1;
        let message_id = *message_id;
        let stored = StoredMessage {
            from,
            date: unix_now(),
            text: text.to_owned(),
            parse_mode,
            reply_markup,
            reply_to,
            edited: false,
        };
        self.messages.insert((chat_id, message_id), stored);
        message_id
    }

    /// The Bot API `Message`: the text a user sees, and the keyboard if it is an inline one.
    fn message_json(&self, chat_id: i64, message_id: i64, with_reply: bool) -> Value {
        let Some(message) = self.messages.get(&(chat_id, message_id)) else {
            return Value::Null;
        };
        let text = visible_text(&message.text, message.parse_mode.as_deref())
            .unwrap_or_else(|_| message.text.clone());
        let mut json = json!({ "message_id": message_id, "date": message.date, "chat": chat_json(chat_id), "from": message.from, "text": text });
        if let Some(markup) = message
            .reply_markup
            .as_ref()
            .filter(|markup| markup.get("inline_keyboard").is_some())
        {
            json["reply_markup"] = markup.clone();
        }
        if message.edited {
            json["edit_date"] = json!(unix_now());
        }
        if let Some(reply_to) = message.reply_to.filter(|_| with_reply) {
            json["reply_to_message"] = self.message_json(chat_id, reply_to, false);
        }
        json
    }

    fn call(&mut self, method: &str, params: &Map<String, Value>) -> ApiResult {
        match method {
            "getme" => Ok(json!({
                "id": BOT_ID, "is_bot": true, "first_name": "Wingman Test", "username": BOT_USERNAME,
                "can_join_groups": true, "can_read_all_group_messages": false,
                "supports_inline_queries": false, "has_main_web_app": false,
            })),
            "getwebhookinfo" => Ok(
                json!({ "url": "", "has_custom_certificate": false, "pending_update_count": self.updates.len() }),
            ),
            "deletewebhook" => {
                if param_bool(params, "drop_pending_updates") {
                    self.updates.clear();
                }
                Ok(json!(true))
            }
            "sendmessage" => self.send_message(params),
            "editmessagetext" => self.edit_message(params, true),
            "editmessagereplymarkup" => self.edit_message(params, false),
            "answercallbackquery" => {
                let callback_query_id = param_str(params, "callback_query_id").unwrap_or_default();
                if !self.open_callbacks.remove(&callback_query_id) {
                    return Err(bad_request(
                        "query is too old and response timeout expired or query ID is invalid",
                    ));
                }
                let text = param_str(params, "text");
                let show_alert = param_bool(params, "show_alert");
                self.answers.push(CallbackAnswer {
                    callback_query_id,
                    text,
                    show_alert,
                });
                Ok(json!(true))
            }
            "deletemessage" => {
                let key = (
                    param_chat_id(params)?,
                    param_i64(params, "message_id").unwrap_or(0),
                );
                self.messages
                    .remove(&key)
                    .map(|_| json!(true))
                    .ok_or_else(|| bad_request("message to delete not found"))
            }
            "getchat" => {
                let mut chat = chat_json(param_chat_id(params)?);
                let no_gifts = json!({ "unlimited_gifts": false, "limited_gifts": false, "unique_gifts": false, "premium_subscription": false });
                chat["accent_color_id"] = json!(0);
                chat["max_reaction_count"] = json!(11);
                chat["accepted_gift_types"] = no_gifts;
                Ok(chat)
            }
            "sendchataction" => param_chat_id(params).map(|_| json!(true)),
            "setmycommands" => {
                let commands = param_json(params, "commands")
                    .and_then(|commands| commands.as_array().cloned())
                    .ok_or_else(|| bad_request("commands must be an array"))?;
                self.my_commands = commands
                    .iter()
                    .map(|command| {
                        let field =
                            |name: &str| command[name].as_str().unwrap_or_default().to_owned();
                        (field("command"), field("description"))
                    })
                    .collect();
                Ok(json!(true))
            }
            "deletemycommands" => {
                self.my_commands.clear();
                Ok(json!(true))
            }
            _ => Err(ApiFailure {
                code: 404,
                description: "Not Found: method not found".to_owned(),
                parameters: None,
            }),
        }
    }

    fn send_message(&mut self, params: &Map<String, Value>) -> ApiResult {
        let chat_id = param_chat_id(params)?;
        let text = param_str(params, "text").unwrap_or_default();
        let parse_mode = param_str(params, "parse_mode").filter(|mode| !mode.is_empty());
        let reply_markup = param_json(params, "reply_markup");
        check_text(&text, parse_mode.as_deref(), "message is too long")?;
        let reply_to_message_id = param_json(params, "reply_parameters")
            .and_then(|reply| param_i64(reply.as_object()?, "message_id"))
            .or_else(|| param_i64(params, "reply_to_message_id"));
        if let Some(reply_to) = reply_to_message_id
            && !self.messages.contains_key(&(chat_id, reply_to))
        {
            return Err(bad_request("message to be replied not found"));
        }
        let message_id = self.store_message(
            chat_id,
            bot_json(),
            &text,
            parse_mode.clone(),
            reply_markup.clone(),
            reply_to_message_id,
        );
        self.sent.push(SentMessage {
            message_id,
            chat_id,
            text,
            parse_mode,
            reply_markup,
            reply_to_message_id,
        });
        Ok(self.message_json(chat_id, message_id, true))
    }

    /// `editMessageText` when `with_text`, else `editMessageReplyMarkup`.
    fn edit_message(&mut self, params: &Map<String, Value>, with_text: bool) -> ApiResult {
        let chat_id = param_chat_id(params)?;
        let message_id = param_i64(params, "message_id")
            .ok_or_else(|| bad_request("message identifier is not specified"))?;
        let text = if with_text {
            Some(param_str(params, "text").unwrap_or_default())
        } else {
            None
        };
        let parse_mode = param_str(params, "parse_mode").filter(|mode| !mode.is_empty());
        let reply_markup = param_json(params, "reply_markup");
        let Some(message) = self.messages.get_mut(&(chat_id, message_id)) else {
            return Err(bad_request("message to edit not found"));
        };
        if message.from["id"] != json!(BOT_ID) {
            return Err(bad_request("message can't be edited"));
        }
        if let Some(text) = &text {
            check_text(text, parse_mode.as_deref(), "MESSAGE_TOO_LONG")?;
        }
        let unchanged_text = text
            .as_ref()
            .is_none_or(|text| *text == message.text && parse_mode == message.parse_mode);
        if unchanged_text && reply_markup == message.reply_markup {
            return Err(bad_request(
                "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
            ));
        }
        if let Some(text) = &text {
            message.text.clone_from(text);
            message.parse_mode.clone_from(&parse_mode);
        }
        message.reply_markup.clone_from(&reply_markup);
        message.edited = true;
        self.edits.push(EditedMessage {
            chat_id,
            message_id,
            text,
            parse_mode,
            reply_markup,
        });
        Ok(self.message_json(chat_id, message_id, true))
    }
}

/// Every request lands here: `/bot<token>/<method>`, any HTTP method, JSON, form or query params.
async fn handle_request(AxumState(shared): AxumState<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let mut segments = path.rsplit('/').filter(|segment| !segment.is_empty());
    let method = segments.next().unwrap_or_default().to_ascii_lowercase();
    if segments
        .next()
        .and_then(|segment| segment.strip_prefix("bot"))
        != Some(TOKEN)
    {
        return failure_response(ApiFailure {
            code: 401,
            description: "Unauthorized".to_owned(),
            parameters: None,
        });
    }
    let params = match read_params(request).await {
        Ok(params) => params,
        Err(failure) => return failure_response(failure),
    };
    let result = {
        let mut state = shared.lock();
        *state.calls.entry(method.clone()).or_default() += 1;
        match state
            .failures
            .get_mut(&method)
            .and_then(VecDeque::pop_front)
        {
            Some(failure) => Some(Err(failure)),
            None if method == "getupdates" => None,
            None => Some(state.call(&method, &params)),
        }
    };
    shared.changed.notify_waiters();
    let result = match result {
        Some(result) => result,
        None => get_updates(&shared, &params).await,
    };
    match result {
        Ok(value) => (
            StatusCode::OK,
            axum::Json(json!({ "ok": true, "result": value })),
        )
            .into_response(),
        Err(failure) => failure_response(failure),
    }
}

/// Confirms updates below `offset`, then returns the rest, waiting up to `timeout` (capped) for one.
async fn get_updates(shared: &Shared, params: &Map<String, Value>) -> ApiResult {
    let offset = param_i64(params, "offset").unwrap_or(0);
    let limit =
        usize::try_from(param_i64(params, "limit").unwrap_or(100).clamp(1, 100)).unwrap_or(100);
    let timeout =
        Duration::from_secs(u64::try_from(param_i64(params, "timeout").unwrap_or(0)).unwrap_or(0));
    let deadline = Instant::now() + timeout.min(MAX_LONG_POLL);
    let generation = {
        let mut state = shared.lock();
        if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            let drop_count = state.updates.len().saturating_sub(keep);
            state.updates.drain(..drop_count);
        } else {
            state.updates.retain(|(update_id, _)| *update_id >= offset);
        }
        if let Some(Value::Array(kinds)) = param_json(params, "allowed_updates") {
            state.allowed_updates = Some(
                kinds
                    .iter()
                    .filter_map(|kind| Some(kind.as_str()?.to_owned()))
                    .collect(),
            );
        }
        state.poll_generation += 1;
        state.poll_generation
    };
    shared.changed.notify_waiters();
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        {
            let mut state = shared.lock();
            if state.poll_generation != generation {
                let description = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
                return Err(ApiFailure {
                    code: 409,
                    description: description.to_owned(),
                    parameters: None,
                });
            }
            if let Some(kinds) = state
                .allowed_updates
                .clone()
                .filter(|kinds| !kinds.is_empty())
            {
                state
                    .updates
                    .retain(|(_, update)| kinds.iter().any(|kind| update.get(kind).is_some()));
            }
            let batch: Vec<Value> = state
                .updates
                .iter()
                .take(limit)
                .map(|(_, update)| update.clone())
                .collect();
            if !batch.is_empty() || Instant::now() >= deadline {
                return Ok(Value::Array(batch));
            }
        }
        tokio::select! {
            () = changed => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Query parameters, overlaid with a JSON or form body.
async fn read_params(request: Request) -> Result<Map<String, Value>, ApiFailure> {
    let query = Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .map(|query| query.0)
        .unwrap_or_default();
    let mut params: Map<String, Value> = query
        .into_iter()
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let Form(form) = Form::<HashMap<String, String>>::from_request(request, &())
            .await
            .map_err(|_| bad_request("invalid form body"))?;
        params.extend(
            form.into_iter()
                .map(|(key, value)| (key, Value::String(value))),
        );
    } else {
        let body = Bytes::from_request(request, &())
            .await
            .map_err(|_| bad_request("unreadable body"))?;
        if !body.is_empty() {
            let json: Map<String, Value> = serde_json::from_slice(&body)
                .map_err(|_| bad_request("can't parse JSON object"))?;
            params.extend(json);
        }
    }
    Ok(params)
}

fn failure_response(failure: ApiFailure) -> Response {
    let mut body =
        json!({ "ok": false, "error_code": failure.code, "description": failure.description });
    if let Some(parameters) = failure.parameters {
        body["parameters"] = parameters;
    }
    (
        StatusCode::from_u16(failure.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

fn bad_request(reason: &str) -> ApiFailure {
    ApiFailure {
        code: 400,
        description: format!("Bad Request: {reason}"),
        parameters: None,
    }
}

/// Rejects empty, unparsable or too long text; `too_long` differs between sending and editing.
fn check_text(text: &str, parse_mode: Option<&str>, too_long: &str) -> Result<(), ApiFailure> {
    let visible = visible_text(text, parse_mode).map_err(|reason| bad_request(&reason))?;
    if visible.trim().is_empty() {
        return Err(bad_request("message text is empty"));
    }
    if visible.chars().count() > MAX_TEXT_CHARS {
        return Err(bad_request(too_long));
    }
    Ok(())
}

/// The text a user sees once Telegram has parsed the markup, or why parsing failed.
fn visible_text(text: &str, parse_mode: Option<&str>) -> Result<String, String> {
    match parse_mode.map(str::to_ascii_lowercase).as_deref() {
        None | Some("markdown") => Ok(text.to_owned()),
        Some("html") => {
            strip_html(text).map_err(|reason| format!("can't parse entities: {reason}"))
        }
        Some("markdownv2") => {
            strip_markdown_v2(text).map_err(|reason| format!("can't parse entities: {reason}"))
        }
        Some(_) => Err("unsupported parse_mode".to_owned()),
    }
}

fn strip_html(text: &str) -> Result<String, String> {
    const TAGS: [&str; 16] = [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    ];
    let mut visible = String::with_capacity(text.len());
    let mut open_tags: Vec<String> = Vec::new();
    let mut index = 0;
    while let Some(character) = text[index..].chars().next() {
        let rest = &text[index..];
        if character == '<' {
            let end = rest.find('>').ok_or_else(|| {
                format!("Can't find end of the tag starting at byte offset {index}")
            })?;
            let inner = &rest[1..end];
            if let Some(name) = inner.strip_prefix('/') {
                let name = name.trim().to_ascii_lowercase();
                match open_tags.pop() {
                    Some(expected) if expected == name => {}
                    Some(expected) => {
                        return Err(format!(
                            "Unmatched end tag at byte offset {index}, expected \"</{expected}>\", found \"</{name}>\""
                        ));
                    }
                    None => return Err(format!("Unexpected end tag at byte offset {index}")),
                }
            } else {
                let name = inner
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if !TAGS.contains(&name.as_str()) {
                    return Err(format!(
                        "Unsupported start tag \"{name}\" at byte offset {index}"
                    ));
                }
                open_tags.push(name);
            }
            index += end + 1;
        } else if let Some((entity, decoded)) = [
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&amp;", '&'),
            ("&quot;", '"'),
        ]
        .into_iter()
        .find(|(entity, _)| rest.starts_with(entity))
        {
            visible.push(decoded);
            index += entity.len();
        } else {
            visible.push(character);
            index += character.len_utf8();
        }
    }
    match open_tags.pop() {
        Some(tag) => Err(format!(
            "Can't find end tag corresponding to start tag \"{tag}\""
        )),
        None => Ok(visible),
    }
}

/// Approximate: drops escapes and formatting characters, and rejects unescaped reserved ones.
fn strip_markdown_v2(text: &str) -> Result<String, String> {
    let mut visible = String::with_capacity(text.len());
    let (mut in_code, mut in_link_url, mut after_link_text, mut line_start) =
        (false, false, false, true);
    let mut characters = text.chars();
    while let Some(character) = characters.next() {
        let was_line_start = std::mem::replace(&mut line_start, character == '\n');
        let was_after_link_text =
            std::mem::replace(&mut after_link_text, character == ']' && !in_code);
        match character {
            '\\' => visible.extend(characters.next()),
            '`' => in_code = !in_code,
            _ if in_code => visible.push(character),
            ')' if in_link_url => in_link_url = false,
            _ if in_link_url => {}
            '(' if was_after_link_text => in_link_url = true,
            '*' | '_' | '~' | '|' | '[' | ']' => {}
            '>' if was_line_start => {}
            '>' | '#' | '+' | '-' | '=' | '{' | '}' | '.' | '!' | '(' | ')' => {
                return Err(format!(
                    "Character '{character}' is reserved and must be escaped with the preceding '\\'"
                ));
            }
            _ => visible.push(character),
        }
    }
    Ok(visible)
}

fn user_json(user_id: i64) -> Value {
    json!({ "id": user_id, "is_bot": false, "first_name": format!("User {user_id}"), "username": format!("user{user_id}") })
}

fn bot_json() -> Value {
    json!({ "id": BOT_ID, "is_bot": true, "first_name": "Wingman Test", "username": BOT_USERNAME })
}

/// Private chat for a positive id (the user's own), supergroup for -100…, group otherwise.
fn chat_json(chat_id: i64) -> Value {
    match chat_id {
        id if id > 0 => {
            json!({ "id": id, "type": "private", "first_name": format!("User {id}"), "username": format!("user{id}") })
        }
        id if id <= -1_000_000_000_000 => {
            json!({ "id": id, "type": "supergroup", "title": format!("Group {id}") })
        }
        id => json!({ "id": id, "type": "group", "title": format!("Group {id}") }),
    }
}

fn param_i64(params: &Map<String, Value>, name: &str) -> Option<i64> {
    match params.get(name)? {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn param_str(params: &Map<String, Value>, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn param_bool(params: &Map<String, Value>, name: &str) -> bool {
    matches!(params.get(name), Some(Value::Bool(true)))
        || param_str(params, name).as_deref() == Some("true")
}

/// An object parameter, which query strings and forms carry as JSON text.
fn param_json(params: &Map<String, Value>, name: &str) -> Option<Value> {
    match params.get(name)? {
        Value::Null => None,
        Value::String(text) => serde_json::from_str(text).ok(),
        other => Some(other.clone()),
    }
}

/// Numeric chat ids only: the fake knows no `@username` chats.
fn param_chat_id(params: &Map<String, Value>) -> Result<i64, ApiFailure> {
    match params.get("chat_id") {
        None | Some(Value::Null) => Err(bad_request("chat_id is empty")),
        Some(_) => param_i64(params, "chat_id")
            .filter(|id| *id != 0)
            .ok_or_else(|| bad_request("chat not found")),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}
