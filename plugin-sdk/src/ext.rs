//! Conveniences on the contract's types for the things policies do all the time: read and set
//! the text, read and set labels.

use crate::{Account, AccountLimits, Content, Deliver, IncomingSms, Message, RouteDecision};

fn label<'a>(labels: &'a [(String, String)], key: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, value)| value.as_str())
}

fn set_label(labels: &mut Vec<(String, String)>, key: String, value: String) {
    match labels.iter_mut().find(|(k, _)| *k == key) {
        Some((_, existing)) => *existing = value,
        None => labels.push((key, value)),
    }
}

impl Content {
    /// The text, or `None` for binary content.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Content::Text(text) => Some(text),
            Content::Binary(_) => None,
        }
    }
}

impl Message {
    /// The message text, or `None` for binary content.
    pub fn text(&self) -> Option<&str> {
        self.content.as_text()
    }

    /// Replaces the content with `text` (binary content too). Return the message in
    /// [`TransformResult::Replace`](crate::TransformResult::Replace) for it to take effect.
    pub fn set_text(&mut self, text: impl Into<String>) {
        self.content = Content::Text(text.into());
    }

    /// The value of label `key`, set by an earlier plugin.
    pub fn label(&self, key: &str) -> Option<&str> {
        label(&self.labels, key)
    }

    /// Sets label `key` for later plugins, replacing an existing value. Return the message in
    /// [`TransformResult::Replace`](crate::TransformResult::Replace) for it to take effect.
    pub fn set_label(&mut self, key: impl Into<String>, value: impl Into<String>) {
        set_label(&mut self.labels, key.into(), value.into());
    }
}

impl Deliver {
    /// The text (for receipts, the receipt text), or `None` for binary content.
    pub fn text(&self) -> Option<&str> {
        self.content.as_text()
    }

    /// Replaces the content with `text`. Return the deliver in
    /// [`DeliverResult::Replace`](crate::DeliverResult::Replace) for it to take effect.
    pub fn set_text(&mut self, text: impl Into<String>) {
        self.content = Content::Text(text.into());
    }

    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        label(&self.labels, key)
    }

    /// Sets label `key`, replacing an existing value. Return the deliver in
    /// [`DeliverResult::Replace`](crate::DeliverResult::Replace) for it to take effect.
    pub fn set_label(&mut self, key: impl Into<String>, value: impl Into<String>) {
        set_label(&mut self.labels, key.into(), value.into());
    }
}

impl IncomingSms {
    /// The text, or `None` for binary content (sms:data-received).
    pub fn text(&self) -> Option<&str> {
        self.content.as_text()
    }
}

impl Account {
    /// The value of the account's label `key`, as set when the account was configured or
    /// accepted.
    pub fn label(&self, key: &str) -> Option<&str> {
        label(&self.labels, key)
    }

    /// Sets the account's label `key`, replacing an existing value (useful when building the
    /// account for [`AuthResult::Accept`](crate::AuthResult::Accept)).
    pub fn set_label(&mut self, key: impl Into<String>, value: impl Into<String>) {
        set_label(&mut self.labels, key.into(), value.into());
    }
}

/// No limits: the server's defaults apply.
impl Default for AccountLimits {
    fn default() -> Self {
        AccountLimits {
            max_binds: None,
            messages_per_second: None,
        }
    }
}

/// Changes nothing: every field keeps the account's default. Start from it with struct
/// update syntax: `RouteDecision { sim_number: Some(2), ..Default::default() }`.
impl Default for RouteDecision {
    fn default() -> Self {
        RouteDecision {
            device_id: None,
            sim_number: None,
            priority: None,
            credentials: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing;

    #[test]
    fn labels_are_replaced_not_duplicated() {
        let mut m = testing::message("A", "+1", "x");
        assert_eq!(m.label("k"), None);
        m.set_label("k", "1");
        m.set_label("k", "2");
        m.set_label("j", "3");
        assert_eq!(m.label("k"), Some("2"));
        assert_eq!(m.labels.len(), 2);
    }

    #[test]
    fn binary_content_has_no_text() {
        let mut m = testing::message("A", "+1", "x");
        m.content = crate::Content::Binary(crate::BinaryContent {
            data: vec![1, 2],
            port: 5000,
        });
        assert_eq!(m.text(), None);
        m.set_text("now text");
        assert_eq!(m.text(), Some("now text"));
    }
}
