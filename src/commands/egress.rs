//! `safeclaw egress serve`: the egress proxy, in its own hardened
//! container (docs/egress.md). Its argv holds the policy: destinations are
//! not secrets, and the engine's inspect shows what the proxy enforces.

use std::io::Write;

use crate::cli::EgressServeArgs;
use crate::egress::address::Cidr;
use crate::egress::policy::{self, Policy, Rule};
use crate::egress::proxy::{Proxy, Settings};
use crate::error::{Error, Result};

/// Resolves the arguments into the proxy's settings.
fn settings(args: &EgressServeArgs) -> Result<Settings> {
    if args.allow.len() > policy::MAX_RULES {
        return Err(Error::usage(format!(
            "at most {} --allow rules",
            policy::MAX_RULES
        )));
    }
    let rules = args
        .allow
        .iter()
        .map(|r| Rule::parse(r).map_err(Error::usage))
        .collect::<Result<Vec<_>>>()?;
    let refuse = args
        .refuse
        .iter()
        .take(policy::MAX_RULES + 1)
        .map(|c| {
            Cidr::parse(c).ok_or_else(|| Error::usage(format!("--refuse {c:?} is not ADDR[/PREFIX]")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Settings {
        policy: Policy { open: false, rules },
        refuse,
        max_tunnels: usize::from(args.max_tunnels),
    })
}

pub fn serve(args: EgressServeArgs) -> Result<()> {
    let settings = settings(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::failure(format!("starting the async runtime: {e}")))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| Error::failure(format!("listening on {}: {e}", args.listen)))?;
        let shown: Vec<String> = settings.policy.rules.iter().map(ToString::to_string).collect();
        println!(
            "{}",
            serde_json::json!({ "listening": args.listen.to_string(), "allow": shown,
                                "refuse": args.refuse })
        );
        let proxy = Proxy::new(settings);
        proxy
            .serve(listener, |event| {
                // One line per decision, flushed: the engine's log of this
                // container is the egress log.
                if let Ok(line) = serde_json::to_string(event) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            })
            .await
            .map_err(|e| Error::failure(format!("accepting on {}: {e}", args.listen)))
    })
}
