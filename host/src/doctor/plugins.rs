//! Do the plugins load: every component in `plugins.dir` with its NAME.toml, checked by the
//! server's own loader (contract, limits, settings), and what each one hooks into.

use smsgate_plugin_host::Plugins;

use super::Check;
use crate::config::Config;

pub fn check(config: &Config) -> Vec<Check> {
    const KEY: &str = "plugins.dir";
    let dir = config.plugins.dir.display();
    let plugins = match Plugins::load(&config.plugins) {
        Ok(plugins) => plugins,
        Err(e) => {
            return vec![Check::failed(
                KEY,
                format!("{e:#}"),
                "fix or remove the file it names; `smsgate-smpp plugin check FILE.wasm` tells more",
            )];
        }
    };
    let loaded = plugins.loaded();
    let mut checks = vec![Check::ok(
        KEY,
        format!("{dir}: {} plugin(s) load", loaded.len()),
    )];
    checks.extend(loaded.into_iter().map(|plugin| {
        Check::ok(
            format!("plugin {}", plugin.file),
            format!(
                "{} {} (contract {}), order {}, hooks: {}",
                plugin.name,
                plugin.version,
                plugin.contract,
                plugin.order,
                plugin.hooks.join(", ")
            ),
        )
    }));
    checks
}
