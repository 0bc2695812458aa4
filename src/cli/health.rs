//! `wingman health <url>`: the containers' health probe. The runtime image has no curl or
//! wget, so this is a minimal HTTP/1.1 GET over plain TCP: exit 0 on a 2xx answer within the
//! timeout, non-zero otherwise.

use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::ExitCode;

/// `wingman health`'s arguments.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// e.g. http://127.0.0.1:9106/health
    pub url: String,
    /// Print {"url", "status", "ready"} as JSON (also when it is not ready).
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the answer (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = crate::duration::parse)]
    pub timeout: Duration,
}

/// Exit 0 when `url` answers 2xx within the timeout, 1 otherwise (with `--json`, the answer
/// is printed either way). Reads no setting, so a probe depends on nothing else.
pub async fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let HealthArgs { url, json, timeout } = args;
    let answer = probe(&url, timeout).await;
    if json {
        let shown = match &answer {
            Ok(code) => serde_json::json!({
                "url": url, "status": code, "ready": (200..300).contains(code)
            }),
            Err(error) => serde_json::json!({
                "url": url, "status": null, "ready": false, "error": format!("{error:#}")
            }),
        };
        println!("{shown}");
        let ready = shown["ready"] == true;
        return Ok(if ready { ExitCode::Ok } else { ExitCode::Error });
    }
    let code = answer?;
    anyhow::ensure!((200..300).contains(&code), "{url} answered {code}");
    Ok(ExitCode::Ok)
}

/// GETs `url` (`http://host:port/path`) and returns the status code.
pub async fn probe(url: &str, timeout: Duration) -> anyhow::Result<u16> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("`{url}` must start with http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    anyhow::ensure!(!authority.is_empty(), "`{url}` has no host");
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    tokio::time::timeout(timeout, async {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .with_context(|| format!("connect to {address}"))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        let mut buffer = [0u8; 512];
        while !head.windows(2).any(|pair| pair == b"\r\n") {
            let read = stream.read(&mut buffer).await?;
            anyhow::ensure!(
                read > 0,
                "{address} closed the connection without an answer"
            );
            head.extend_from_slice(&buffer[..read]);
        }
        parse_status_line(&head)
    })
    .await
    .with_context(|| format!("no answer from {url} within {timeout:?}"))?
}

fn parse_status_line(head: &[u8]) -> anyhow::Result<u16> {
    let text = String::from_utf8_lossy(head);
    let line = text.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    anyhow::ensure!(version.starts_with("HTTP/"), "not an HTTP answer: `{line}`");
    parts
        .next()
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| format!("no status code in `{line}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_gives_the_code() {
        assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\n").unwrap(), 200);
        assert_eq!(
            parse_status_line(b"HTTP/1.1 503 Service Unavailable\r\n").unwrap(),
            503
        );
        assert!(parse_status_line(b"SSH-2.0-OpenSSH\r\n").is_err());
    }

    #[tokio::test]
    async fn a_probe_reads_a_real_server_and_fails_on_a_closed_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = axum::Router::new().route("/health", axum::routing::get(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(listener, router).await });
        let url = format!("http://{address}/health");
        assert_eq!(probe(&url, Duration::from_secs(5)).await.unwrap(), 200);
        let missing = format!("http://{address}/nope");
        assert_eq!(probe(&missing, Duration::from_secs(5)).await.unwrap(), 404);
        assert!(
            probe("http://127.0.0.1:1/health", Duration::from_secs(2))
                .await
                .is_err()
        );
    }
}
