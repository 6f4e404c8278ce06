//! A starting point for a smsgate-smpp policy plugin.
//!
//! The policy: refuse messages whose text is empty or needs more SMS parts than allowed, and
//! tag every other message with a label that later plugins (a router, say) can act on.
//! Replace it with yours; the README next to this file says how to build, check and install.

use smsgate_plugin_sdk::{
    Account, Message, Plugin, TransformResult, TransformSubmit, config, log, register_plugin,
    status, text,
};

/// The plugin's state: its configuration, read once per instance.
pub struct Template {
    label: String,
    value: String,
    max_segments: Option<usize>,
}

impl Plugin for Template {
    fn new() -> Self {
        let max_segments = match config::get_parsed::<usize>("max_segments") {
            None | Some(Ok(0)) => None,
            Some(Ok(max)) => Some(max),
            // A typo in the configuration should not take messages down with it.
            Some(Err(err)) => {
                log::warn(&format!(
                    "max_segments is not a number ({err}); no limit applies"
                ));
                None
            }
        };
        Template {
            label: config::get("label").unwrap_or_else(|| "plugin-template".to_owned()),
            value: config::get("value").unwrap_or_default(),
            max_segments,
        }
    }
}

// `register_plugin!` announces to the server the hooks whose traits are implemented, and
// only those: adding `impl Route for Template` is all it takes to be asked about routing too.
impl TransformSubmit for Template {
    fn transform_submit(&mut self, account: &Account, mut message: Message) -> TransformResult {
        // Binary messages have no text to judge; they are only tagged.
        if let Some(text) = message.text() {
            if text.trim().is_empty() {
                log::info(&format!(
                    "{}: refused an empty message from {}",
                    account.id, message.source.addr
                ));
                return TransformResult::Reject(status::ESME_RINVMSGLEN);
            }
            let segments = text::segment_count(text);
            if let Some(max) = self.max_segments
                && segments > max
            {
                log::info(&format!(
                    "{}: refused a message of {segments} parts (at most {max})",
                    account.id
                ));
                return TransformResult::Reject(status::ESME_RINVMSGLEN);
            }
        }
        message.set_label(&self.label, &self.value);
        TransformResult::Replace(message)
    }
}

register_plugin!(Template);

#[cfg(test)]
mod tests {
    use super::*;
    use smsgate_plugin_sdk::log::Level;
    use smsgate_plugin_sdk::{Hook, plugin_hooks, testing};

    fn submit(text: &str) -> TransformResult {
        let mut plugin = Template::new();
        let account = testing::account("acme");
        plugin.transform_submit(&account, testing::message("ACME", "+491701234567", text))
    }

    #[test]
    fn tags_messages_with_the_configured_label() {
        testing::set_config(&[("label", "tier"), ("value", "gold")]);
        let TransformResult::Replace(message) = submit("hello") else {
            panic!("expected the message back with a label");
        };
        assert_eq!(message.label("tier"), Some("gold"));
        assert_eq!(message.text(), Some("hello"));
    }

    #[test]
    fn default_label_without_configuration() {
        let TransformResult::Replace(message) = submit("hello") else {
            panic!("expected the message back with a label");
        };
        assert_eq!(message.label("plugin-template"), Some(""));
    }

    #[test]
    fn refuses_empty_texts() {
        assert_eq!(submit(""), TransformResult::Reject(status::ESME_RINVMSGLEN));
        assert_eq!(
            submit(" \n"),
            TransformResult::Reject(status::ESME_RINVMSGLEN)
        );
        assert_eq!(testing::logs()[0].0, Level::Info);
        assert!(testing::logs()[0].1.contains("acme"));
    }

    #[test]
    fn limits_the_number_of_parts() {
        testing::set_config(&[("max_segments", "2")]);
        assert!(matches!(
            submit(&"a".repeat(306)),
            TransformResult::Replace(_)
        ));
        assert_eq!(
            submit(&"a".repeat(307)),
            TransformResult::Reject(status::ESME_RINVMSGLEN)
        );
    }

    #[test]
    fn a_bad_limit_is_logged_and_ignored() {
        testing::set_config(&[("max_segments", "three")]);
        assert!(matches!(
            submit(&"a".repeat(1000)),
            TransformResult::Replace(_)
        ));
        assert_eq!(testing::logs()[0].0, Level::Warn);
    }

    #[test]
    fn announces_only_the_hook_it_implements() {
        assert_eq!(plugin_hooks!(Template), [Hook::TransformSubmit]);
    }
}
