//! The control API client used by the CLI's client commands. Blocking (ureq): a CLI command makes
//! one request and exits.
//!
//! It finds the host through `--host URL --token T`, or through the data dir where `serve` wrote
//! `address` and `token`.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A connection to a host's control API.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// Finds the host: an explicit `host`/`token` wins over what `serve` wrote in `data_dir`.
    ///
    /// # Errors
    /// When neither gives an address or a token, with the fix.
    pub fn connect(
        host: Option<&str>,
        token: Option<&str>,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let read =
            |file: &str| std::fs::read_to_string(data_dir.join(file)).map(|s| s.trim().to_owned());
        let base = match host {
            Some(h) => h.trim_end_matches('/').to_owned(),
            None => read("address").with_context(|| {
                format!(
                    "no running host found: {} has no `address` file. Start one with `hotswap serve` \
                     (same --data-dir), or pass --host URL --token T",
                    data_dir.display()
                )
            })?,
        };
        let token = match token {
            Some(t) => t.to_owned(),
            None => read("token").with_context(|| {
                format!(
                    "no token: {} has no `token` file; pass --token T (or HOTSWAP_TOKEN)",
                    data_dir.display()
                )
            })?,
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self { base, token, agent })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// `GET path`, decoded as JSON.
    ///
    /// # Errors
    /// Connection failures and error answers, with the host's message.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self
            .agent
            .get(self.url(path))
            .header("Authorization", self.auth())
            .call();
        self.decode(path, response)
    }

    /// `POST path` with raw bytes and extra `headers`.
    ///
    /// # Errors
    /// Connection failures and error answers, with the host's message.
    pub fn post_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let mut request = self
            .agent
            .post(self.url(path))
            .header("Authorization", self.auth())
            .header("Content-Type", "application/octet-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.decode(path, request.send(body))
    }

    /// `POST path` with a JSON body.
    ///
    /// # Errors
    /// Connection failures and error answers, with the host's message.
    pub fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        let response = self
            .agent
            .post(self.url(path))
            .header("Authorization", self.auth())
            .send_json(body);
        self.decode(path, response)
    }

    /// `DELETE path`.
    ///
    /// # Errors
    /// Connection failures and error answers, with the host's message.
    pub fn delete(&self, path: &str) -> anyhow::Result<()> {
        let response = self
            .agent
            .delete(self.url(path))
            .header("Authorization", self.auth())
            .call();
        self.decode::<serde_json::Value>(path, response).map(drop)
    }

    /// `GET path` as NDJSON, calling `each` per line until the stream ends.
    ///
    /// # Errors
    /// Connection failures and error answers.
    pub fn stream_lines(
        &self,
        path: &str,
        mut each: impl FnMut(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let response = self
            .agent
            .get(self.url(path))
            .header("Authorization", self.auth())
            .call();
        let response = self.check(path, response)?;
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        for line in reader.lines() {
            let line = line.context("the log stream broke")?;
            if !line.is_empty() {
                each(&line)?;
            }
        }
        Ok(())
    }

    fn check(
        &self,
        path: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        let mut response = response.with_context(|| {
            format!(
                "cannot reach the host at {} (is `hotswap serve` running?)",
                self.base
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or(text);
        bail!("the host refused {path} ({status}): {message}")
    }

    fn decode<T: DeserializeOwned>(
        &self,
        path: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<T> {
        let mut response = self.check(path, response)?;
        let text = response
            .body_mut()
            .read_to_string()
            .context("failed to read the host's answer")?;
        let text = if text.trim().is_empty() {
            "null"
        } else {
            &text
        };
        serde_json::from_str(text)
            .with_context(|| format!("unexpected answer from the host for {path}: {text}"))
    }
}
