//! Headless chromium driven through WebDriver (chromedriver), for the web console's tests
//! (`web_console`): log in, read and click, vote, lay a page out at a phone's width, measure
//! the focus ring, follow the live timeline, and save screenshots.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The width of a phone's screen in CSS pixels (an iPhone 12 to 15).
pub const PHONE_WIDTH: u32 = 390;

/// Measures the focused element's ring: whether `:focus-visible` draws a solid outline of 2 px
/// or more, and the contrast ratio of its colour against the first opaque background behind
/// the element (WCAG 2 relative luminance).
const FOCUS_RING_CONTRAST: &str = "
  const element = document.activeElement;
  const style = getComputedStyle(element);
  const rgb = (color) => color.match(/[\\d.]+/g).map(Number);
  const luminance = (color) => {
    const [r, g, b] = rgb(color).slice(0, 3).map((value) => {
      const channel = value / 255;
      return channel <= 0.04045 ? channel / 12.92 : Math.pow((channel + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  let behind = element.parentElement;
  while (behind && (rgb(getComputedStyle(behind).backgroundColor)[3] === 0)) {
    behind = behind.parentElement;
  }
  const background = behind ? getComputedStyle(behind).backgroundColor : 'rgb(255, 255, 255)';
  const [light, dark] = [luminance(style.outlineColor), luminance(background)].sort((a, b) => b - a);
  return {
    visible: element.matches(':focus-visible') && style.outlineStyle === 'solid'
      && parseFloat(style.outlineWidth) >= 2,
    outline: style.outlineColor,
    background: background,
    contrast: (light + 0.05) / (dark + 0.05),
  };
";

/// A Chrome DevTools Protocol command, as chromedriver takes it at
/// `POST /session/{id}/goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// Headless chromium behind its own chromedriver.
pub struct Browser {
    pub client: Client,
    _driver: tokio::process::Child,
}

impl Browser {
    pub async fn start() -> Self {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver is missing: scripts/test installs it (ensure_chromium)");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"] }),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(error) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "chromedriver did not start: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        Self {
            client,
            _driver: driver,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Submits the login form with `key`, whatever comes of it.
    pub async fn submit_login(&self, base: &str, key: &str) {
        self.goto(&format!("{base}/console/login")).await;
        self.fill_login(key).await;
    }

    /// Fills and submits the login form the browser shows now (the login page, or the page
    /// a console link redirected to it).
    pub async fn fill_login(&self, key: &str) {
        self.client
            .find(Locator::Css("input[name=key]"))
            .await
            .unwrap()
            .send_keys(key)
            .await
            .unwrap();
        self.client
            .find(Locator::Css("main form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    pub async fn login(&self, base: &str, key: &str) {
        self.submit_login(base, key).await;
        self.wait_for_text("header.top", "Signed in as").await;
    }

    pub async fn logout(&self) {
        self.client
            .find(Locator::Css("form.logout button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_for_text("main", "Log in").await;
    }

    pub async fn text(&self, selector: &str) -> String {
        match self.client.find(Locator::Css(selector)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn exists(&self, selector: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(selector))
            .await
            .unwrap()
            .is_empty()
    }

    /// Waits (without reloading) until `selector`'s text contains `needle`.
    pub async fn wait_for_text(&self, selector: &str, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.text(selector).await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{needle}` never appeared in {selector}: {text}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Fills `reason` and presses the form's `button` (`approve` or `reject`).
    pub async fn vote(&self, button: &str, reason: &str) {
        let form = self
            .client
            .find(Locator::Css(&format!("form.vote:has(button.{button})")))
            .await
            .unwrap();
        form.find(Locator::Css("textarea"))
            .await
            .unwrap()
            .send_keys(reason)
            .await
            .unwrap();
        form.find(Locator::Css(&format!("button.{button}")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// The session cookie and the CSRF token of the page's logout form.
    pub async fn session(&self) -> (String, String) {
        let cookie = self
            .client
            .get_named_cookie("wingman_session")
            .await
            .unwrap()
            .value()
            .to_string();
        let csrf = self
            .client
            .find(Locator::Css("form.logout input[name=csrf]"))
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .unwrap();
        (cookie, csrf)
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver (`goog/cdp/execute`).
    async fn cdp(&self, cmd: &'static str, params: Value) {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|error| panic!("{cmd}: {error}"));
    }

    /// Lays the page out `width` CSS pixels wide (below 640, as a phone: a device-width
    /// viewport and touch) and `height` tall. Through the DevTools protocol, because a window
    /// cannot be made as narrow as a phone. Asserts the page is shown that wide: a page wider
    /// than a phone's screen makes the phone zoom out, and `window.innerWidth` grows.
    async fn viewport(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 640 }),
        )
        .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let measured = self.widths().await;
            if measured["inner"] == json!(width) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "laid out for a screen {width} px wide, the page is shown {} px wide: it does not fit ({measured})",
                measured["inner"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's width as shown (`inner`), its scroll width, and the first elements that
    /// reach past the layout's right edge (inside a box that scrolls on its own, they do not
    /// widen the page).
    async fn widths(&self) -> Value {
        self.client
            .execute(
                "const edge = document.documentElement.clientWidth;
                 const wider = Array.from(document.querySelectorAll('body *'))
                   .filter((element) => element.getBoundingClientRect().right > edge + 0.5)
                   .slice(0, 5)
                   .map((element) => element.tagName.toLowerCase() + '.' + element.className);
                 return { inner: window.innerWidth, scroll: document.documentElement.scrollWidth, wider: wider };",
                vec![],
            )
            .await
            .unwrap()
    }

    /// Back to the window's own size (1280 × 900).
    async fn reset_viewport(&self) {
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
            .await;
    }

    /// Asserts that the page, laid out at a phone's width, is no wider than the screen: nothing
    /// makes the reader scroll sideways (a wide table or chart scrolls in its own box).
    pub async fn assert_fits_a_phone(&self, page: &str) {
        self.viewport(PHONE_WIDTH, 844).await;
        let measured = self.widths().await;
        self.reset_viewport().await;
        assert!(
            measured["scroll"].as_u64().unwrap() <= u64::from(PHONE_WIDTH),
            "{page} scrolls sideways at {PHONE_WIDTH} px: {measured}"
        );
    }

    /// Runs `script` with the page laid out at a phone's width; returns what it returns.
    pub async fn on_a_phone(&self, script: &str) -> Value {
        self.viewport(PHONE_WIDTH, 844).await;
        let value = self.client.execute(script, vec![]).await.unwrap();
        self.reset_viewport().await;
        value
    }

    /// Saves a screenshot of the whole page laid out `width` px wide into
    /// `WINGMAN_SCREENSHOTS`, when set: the height is measured at that width.
    pub async fn screenshot(&self, name: &str, width: u32) {
        let Ok(dir) = std::env::var("WINGMAN_SCREENSHOTS") else {
            return;
        };
        self.viewport(width, 900).await;
        let height: u32 = self
            .client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .ok()
            .and_then(|value| value.as_u64())
            .map_or(900, |height| height.clamp(600, 16_000) as u32);
        self.viewport(width, height).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let png = self.client.screenshot().await.unwrap();
        self.reset_viewport().await;
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/{name}-{width}.png"), png).unwrap();
    }

    /// Presses Tab until `selector` has the focus; returns the contrast ratio of its focus
    /// ring against the background around it (WCAG's formula), having checked that the ring
    /// is drawn (`:focus-visible`, a solid outline at least 2 px wide).
    pub async fn focus_ring_contrast(&self, selector: &str) -> f64 {
        for _ in 0..20 {
            let focused = self
                .client
                .execute(
                    "return document.activeElement.matches(arguments[0]);",
                    vec![json!(selector)],
                )
                .await
                .unwrap();
            if focused == json!(true) {
                let measured = self
                    .client
                    .execute(FOCUS_RING_CONTRAST, vec![])
                    .await
                    .unwrap();
                assert_eq!(measured["visible"], json!(true), "{selector}: {measured}");
                return measured["contrast"].as_f64().unwrap();
            }
            let tab = char::from(Key::Tab);
            self.client
                .perform_actions(
                    KeyActions::new("keyboard".into())
                        .then(KeyAction::Down { value: tab })
                        .then(KeyAction::Up { value: tab }),
                )
                .await
                .unwrap();
        }
        panic!("Tab never reached {selector}");
    }

    /// Counts the page's timeline requests from now on (`timeline_polls` reads the count).
    pub async fn count_timeline_polls(&self) {
        self.client
            .execute(
                "window.wingmanPolls = 0;
                 const fetchBefore = window.fetch;
                 window.fetch = function () { window.wingmanPolls += 1; return fetchBefore.apply(this, arguments); };",
                vec![],
            )
            .await
            .unwrap();
    }

    pub async fn timeline_polls(&self) -> u64 {
        self.client
            .execute("return window.wingmanPolls;", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap()
    }

    /// Marks the timeline's first step (a property, not an attribute: not in its HTML), so
    /// `first_step_kept` tells whether the page kept that node or drew a new one.
    pub async fn mark_first_step(&self) {
        self.client
            .execute(
                "document.querySelector('#timeline > li').wingmanKept = true;",
                vec![],
            )
            .await
            .unwrap();
    }

    pub async fn first_step_kept(&self) -> bool {
        self.client
            .execute(
                "return document.querySelector('#timeline > li').wingmanKept === true;",
                vec![],
            )
            .await
            .unwrap()
            == json!(true)
    }

    /// Waits until the page stopped following the timeline (`data-settled`).
    pub async fn wait_until_timeline_settled(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.exists("#timeline[data-settled=\"1\"]").await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never stopped following the timeline: {}",
                self.text("#timeline").await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
