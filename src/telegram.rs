//! The Telegram client of the approvals stage (teloxide): prompts with Approve / Reject
//! buttons, the outcome edited into them, and the bot's commands.
//!
//! Texts use HTML parse mode; everything from a request is escaped, and prompts are cut to fit
//! Telegram's 4096-character limit without breaking a tag. Buttons carry the record's
//! single-use nonce (`a:`, `r:`, `o:` + nonce), never a bare request id.

use teloxide::payloads::{EditMessageTextSetters, SendMessageSetters};
use teloxide::prelude::{Bot, Requester};
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId, ParseMode, ReplyMarkup,
};

use crate::approval::ApprovalRecord;
use crate::status::Status;

/// Telegram's limit is 4096 characters; we keep a margin for the outcome line.
pub const MAX_PROMPT_CHARS: usize = 3800;
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// Where and how the bot talks.
#[derive(Clone)]
pub struct TelegramClient {
    pub bot: Bot,
    /// Chats that receive prompts (`TELEGRAM_CHAT_ID`, comma-separated).
    pub chats: Vec<i64>,
    /// The web console's base URL (`WINGMAN_CONSOLE_URL`): prompts link to the request's page.
    pub console_url: Option<String>,
}

impl TelegramClient {
    /// `TELEGRAM_API_URL` points the bot at another Bot API server (tests use a fake).
    pub fn new(token: &str, api_url: Option<&str>, chats: Vec<i64>) -> anyhow::Result<Self> {
        let mut bot = Bot::new(token);
        if let Some(url) = api_url {
            bot = bot.set_api_url(
                url.parse()
                    .map_err(|error| anyhow::anyhow!("TELEGRAM_API_URL: {error}"))?,
            );
        }
        Ok(Self {
            bot,
            chats,
            console_url: None,
        })
    }

    /// Links every prompt to the request's page under `console_url` (a checked base URL,
    /// `crate::config::console_url`).
    /// The bot of `settings` (`TELEGRAM_BOT_TOKEN`, `TELEGRAM_CHAT_ID`, `TELEGRAM_API_URL`).
    ///
    /// # Errors
    /// When the API address is not a URL.
    pub fn from_settings(settings: &crate::settings::TelegramSettings) -> anyhow::Result<Self> {
        Self::new(
            settings.token(),
            settings.api_url.as_deref(),
            settings.chats.clone(),
        )
    }

    pub fn with_console_url(mut self, console_url: Option<String>) -> Self {
        self.console_url = console_url;
        self
    }

    /// Sends the prompt to every approver chat; returns (chat, message) of each.
    pub async fn send_prompt(&self, record: &ApprovalRecord) -> anyhow::Result<Vec<(i64, i32)>> {
        let text = prompt_text_linked(record, self.console_url.as_deref());
        let mut sent = Vec::new();
        for chat in &self.chats {
            let message = self
                .bot
                .send_message(ChatId(*chat), text.clone())
                .parse_mode(ParseMode::Html)
                .reply_markup(ReplyMarkup::InlineKeyboard(keyboard(record)))
                .await;
            crate::metrics::telegram_send("prompt", message.is_ok());
            let message = message
                .map_err(|error| anyhow::anyhow!("send the prompt to chat {chat}: {error}"))?;
            sent.push((*chat, message.id.0));
        }
        Ok(sent)
    }

    /// Rewrites the prompts with the outcome and without buttons.
    pub async fn show_outcome(&self, record: &ApprovalRecord, outcome: &str) -> anyhow::Result<()> {
        let text = format!(
            "{}\n\n{}",
            prompt_text_linked(record, self.console_url.as_deref()),
            outcome
        );
        for (chat, message) in &record.messages {
            let edited = self
                .bot
                .edit_message_text(
                    ChatId(*chat),
                    MessageId(*message),
                    cut(&text, MAX_MESSAGE_CHARS),
                )
                .parse_mode(ParseMode::Html)
                .await;
            if let Err(error) = edited {
                let text = error.to_string();
                if !text.contains("not modified") {
                    crate::metrics::telegram_send("outcome", false);
                    anyhow::bail!("edit the prompt in chat {chat}: {text}");
                }
            }
            crate::metrics::telegram_send("outcome", true);
        }
        Ok(())
    }

    pub async fn say(&self, chat: i64, text: &str) -> anyhow::Result<()> {
        let sent = self
            .bot
            .send_message(ChatId(chat), cut(text, MAX_MESSAGE_CHARS))
            .parse_mode(ParseMode::Html)
            .await;
        crate::metrics::telegram_send("notice", sent.is_ok());
        sent.map_err(|error| anyhow::anyhow!("send to chat {chat}: {error}"))?;
        Ok(())
    }
}

pub fn keyboard(record: &ApprovalRecord) -> InlineKeyboardMarkup {
    if record.status == Status::AutoRejected {
        InlineKeyboardMarkup::new([[InlineKeyboardButton::callback(
            "Override and approve",
            format!("o:{}", record.nonce),
        )]])
    } else {
        InlineKeyboardMarkup::new([[
            InlineKeyboardButton::callback("✅ Approve", format!("a:{}", record.nonce)),
            InlineKeyboardButton::callback("❌ Reject", format!("r:{}", record.nonce)),
        ]])
    }
}

/// Everything an approver needs to decide safely, escaped, within the limit.
pub fn prompt_text(record: &ApprovalRecord) -> String {
    prompt_text_linked(record, None)
}

/// [`prompt_text`], with a link to the request's page in the web console under `console_url`
/// (the whole command, every finding and the audit trail are there).
pub fn prompt_text_linked(record: &ApprovalRecord, console_url: Option<&str>) -> String {
    let request = &record.request;
    let headline = match record.status {
        Status::AutoRejected => "⛔ <b>Auto-rejected</b> (a human may override)",
        _ => "🛡 <b>Approval needed</b>",
    };
    let mut head = format!(
        "{headline} · <b>{}</b>\n<b>{}</b>\nRequester: {}\n",
        request.environment.as_str().to_uppercase(),
        escape(&clip(&request.title, 200)),
        escape(&clip(&request.requester, 100)),
    );
    match &request.command {
        Some(command) => head.push_str(&format!(
            "Command:\n<pre>{}</pre>\n",
            escape(&clip(&command.line, 1000))
        )),
        None => head.push_str("Instruction approval (no command)\n"),
    }
    if let Some(score) = record.composite_score {
        head.push_str(&format!(
            "Validation: {score}/100 ({})\n",
            record.profile.as_deref().unwrap_or("?")
        ));
    } else {
        head.push_str("Validation: not applied (outside the rollout)\n");
    }
    let mut tail = String::new();
    if let Some(expires_at) = record.expires_at {
        tail.push_str(&format!(
            "Expires: {}\n",
            expires_at.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    tail.push_str(&format!("Request: <code>{}</code>", request.request_id));
    if let Some(base) = console_url {
        let href = format!("{base}/console/requests/{}", request.request_id);
        tail.push_str(&format!(
            "\n<a href=\"{}\">Open the full evidence in the console</a>",
            escape(&href).replace('"', "&quot;")
        ));
    }
    let mut middle = String::new();
    for reason in record.reasons.iter().take(4) {
        middle.push_str(&format!("• {}\n", escape(&clip(reason, 300))));
    }
    for finding in record.findings.iter().take(6) {
        middle.push_str(&format!("• {}\n", escape(&clip(finding, 300))));
    }
    let budget = MAX_PROMPT_CHARS
        .saturating_sub(head.chars().count() + tail.chars().count() + middle.chars().count() + 20);
    let description = clip_escaped(&request.description, budget.min(1500));
    format!("{head}{middle}<i>{description}</i>\n{tail}")
}

/// Escapes text for Telegram's HTML parse mode.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Cuts plain text (before escaping) to `max` characters, marking the cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Escapes `text` and cuts it so the escaped form has at most `max` characters (an entity is
/// never split).
pub fn clip_escaped(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut length = 0;
    for character in text.chars() {
        let piece = match character {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            other => other.to_string(),
        };
        if length + piece.chars().count() > max.saturating_sub(1) {
            out.push('…');
            return out;
        }
        length += piece.chars().count();
        out.push_str(&piece);
    }
    out
}

/// Last-resort cut of a finished HTML text; only used on texts whose parts were already
/// clipped, so it never triggers in practice.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        escape(&clip(&text.replace('<', "‹").replace('>', "›"), max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::RequestId;
    use crate::request::parse_request;

    fn record(description: &str, command: &str) -> ApprovalRecord {
        let json = serde_json::json!({
            "requester": "agent <7>", "environment": "prd", "command": command,
            "title": "Stop & restart", "description": description,
        });
        ApprovalRecord {
            request: parse_request(json.to_string().as_bytes(), RequestId::generate).unwrap(),
            status: Status::Pending,
            composite_score: Some(62),
            profile: Some("operational".into()),
            reasons: vec!["score 62 < 85".into()],
            findings: vec!["[high] mass_removal: compose down of <all>".into()],
            expires_at: None,
            pending_since: chrono::Utc::now(),
            nonce: "n1".into(),
            messages: vec![],
            votes: vec![],
            needed: None,
            outcomes: vec![],
        }
    }

    #[test]
    fn everything_from_the_request_is_escaped() {
        let text = prompt_text(&record(
            "drop <b>all</b> & go",
            "docker compose -p shop down",
        ));
        assert!(text.contains("Stop &amp; restart"));
        assert!(text.contains("agent &lt;7&gt;"));
        assert!(text.contains("drop &lt;b&gt;all&lt;/b&gt; &amp; go"));
        assert!(text.contains("<pre>docker compose -p shop down</pre>"));
        assert!(!text.contains("<all>"));
    }

    #[test]
    fn a_huge_description_is_cut_to_fit_telegrams_limit() {
        let text = prompt_text(&record(&"x<".repeat(30_000), "docker stop api"));
        assert!(
            text.chars().count() <= MAX_PROMPT_CHARS,
            "{}",
            text.chars().count()
        );
        assert!(text.contains('…'));
        assert!(text.ends_with("</code>"), "the request id survives the cut");
    }

    #[test]
    fn a_prompt_links_to_the_requests_page_when_the_console_is_configured() {
        let targets: Vec<String> = (0..60)
            .map(|i| format!("container-{i:03}-with-a-long-name"))
            .collect();
        let record = record(
            &"x".repeat(30_000),
            &format!("docker stop {}", targets.join(" ")),
        );
        let text = prompt_text_linked(&record, Some("https://wingman.example.com"));
        let link = format!(
            "<a href=\"https://wingman.example.com/console/requests/{}\">",
            record.request.request_id
        );
        assert!(text.contains(&link), "{text}");
        assert!(text.chars().count() <= MAX_PROMPT_CHARS);
        assert!(!prompt_text(&record).contains("<a href"));
    }

    #[test]
    fn buttons_carry_the_nonce_not_the_request_id() {
        let record = record("why", "docker stop api");
        let markup = serde_json::to_value(keyboard(&record)).unwrap();
        let data: Vec<&str> = markup["inline_keyboard"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["callback_data"].as_str().unwrap())
            .collect();
        assert_eq!(data, ["a:n1", "r:n1"]);
    }
}
