//! The egress proxy's request parser, its TLS ClientHello parser and the
//! policy's rule parser on
//! arbitrary bytes (the gateway, where a prompt injection writes what it
//! likes, is the proxy's client): never panic; a request accepted names a
//! host the policy can judge and a port in range; a rule accepted prints as
//! a rule that parses back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safeclaw::egress::{policy, request, tls};

fuzz_target!(|data: &[u8]| {
    // The first TLS record of a tunnel: a name, if any, is a short ASCII one.
    let _ = tls::record_len(data);
    if let Ok(name) = tls::server_name(data) {
        assert!(!name.is_empty() && name.len() <= 253 && name.is_ascii());
    }
    let _ = request::head_len(data);
    if let Ok(c) = request::parse(data) {
        assert!(c.port > 0);
        assert!(!c.host.is_empty());
        let p = policy::Policy::default();
        assert!(matches!(p.judge(&c.host, c.port), policy::Verdict::Denied(_)));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(rule) = policy::Rule::parse(text) {
            let shown = rule.to_string();
            assert_eq!(policy::Rule::parse(&shown).as_ref(), Ok(&rule), "{shown}");
        }
    }
});
