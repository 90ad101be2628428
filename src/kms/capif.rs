//! The KMS as a CAPIF API exposing and publishing function of `ss-kir` (TS 29.549 clause 8),
//! pure: the `ServiceAPIDescription` we publish (TS 29.222 8.2 `Publish_Service_API`), the
//! reading of a CCF access token's scope (TS 33.122 Annex C), of a `ServiceSecurity` answer of
//! `trustedInvokers` (TS 29.222 8.5 `CAPIF_Security_API`), and the invocation `Log` records
//! (TS 29.222 8.4 `CAPIF_Logging_API_Invocation_API`); the bounded spool of those records is
//! [`spool`]. No I/O, no clock reads.
//!
//! What a CAPIF invoker may read through `ss-kir` (our decision, TS 29.549 leaves it to the AEF):
//! the CCF's authorisation (token scope or `trustedInvokers`) says it may invoke `ss-kir` of
//! this AEF at all; which VAL services' key records it reads is the replicated ACL's entry of
//! the principal [`invoker_principal`] (`capif:<apiInvokerId>`, role `val-server`), exactly as
//! for a VAL server. An invoker without an ACL entry is refused (403).

pub mod spool;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The apiName of TS 29.549 `SS_KeyInfoRetrieval`.
pub const API_NAME: &str = "ss-kir";
/// Its version.
pub const API_VERSION: &str = "v1";
/// Its one resource.
pub const RESOURCE_NAME: &str = "key-records";
/// The security methods this AEF serves (TLS-PSK is not served, so never advertised).
pub const SECURITY_METHODS: [&str; 2] = ["PKI", "OAUTH"];
/// The TS 29.222 `Protocol` values the service listener serves (both, by ALPN:
/// `tests/http_versions.rs`). An `AefProfile` names one: `[capif] publish_protocol`, HTTP/1.1
/// by default (every invoker can use it). Each invocation log names the version it came in.
pub const PROTOCOLS: [&str; 2] = ["HTTP_1_1", "HTTP_2"];

/// The `Protocol` value of an HTTP version as served (HTTP/2, else HTTP/1.1).
pub fn protocol_of(http2: bool) -> &'static str {
    if http2 {
        PROTOCOLS[1]
    } else {
        PROTOCOLS[0]
    }
}

fn http_1_1() -> String {
    PROTOCOLS[0].to_owned()
}

/// The ACL principal of a CAPIF invoker.
pub fn invoker_principal(api_invoker_id: &str) -> String {
    format!("capif:{api_invoker_id}")
}

/// The `ServiceAPIDescription` of `ss-kir` served by AEF `aef_id` at `host:port`.
pub fn service_api_description(aef_id: &str, host: &str, port: u16, protocol: &str) -> Value {
    let iface = if host.parse::<std::net::Ipv4Addr>().is_ok() {
        json!({"ipv4Addr": host, "port": port, "apiPrefix": "", "securityMethods": SECURITY_METHODS})
    } else {
        json!({"fqdn": host, "port": port, "apiPrefix": "", "securityMethods": SECURITY_METHODS})
    };
    json!({
        "apiName": API_NAME,
        "description": "TS 29.549 SS_KeyInfoRetrieval: key information provisioned by VAL servers (SEAL key management)",
        "aefProfiles": [{
            "aefId": aef_id,
            "versions": [{
                "apiVersion": API_VERSION,
                "resources": [{
                    "resourceName": RESOURCE_NAME,
                    "commType": "REQUEST_RESPONSE",
                    "uri": "/key-records",
                    "operations": ["GET"],
                    "description": "GET ?val-service-id=S[&val-tgt-ue=U] answers ValKeyInfo"
                }]
            }],
            "protocol": protocol,
            "dataFormat": "JSON",
            "securityMethods": SECURITY_METHODS,
            "interfaceDescriptions": [iface]
        }],
        "supportedFeatures": "0"
    })
}

/// Whether the scopes of a CCF token grant `api_name` of `aef_id`. A scope is
/// `3gpp#<aefId>:<apiName>[,<apiName>…][;<aefId>:…]` (TS 33.122 Annex C); the `3gpp#` prefix
/// is optional, and several scopes may be given.
pub fn scope_grants(scopes: &[String], aef_id: &str, api_name: &str) -> bool {
    scopes.iter().any(|scope| {
        let body = scope.strip_prefix("3gpp#").unwrap_or(scope);
        body.split(';').any(|part| {
            let Some((aef, apis)) = part.split_once(':') else {
                return false;
            };
            aef.trim() == aef_id && apis.split(',').any(|a| a.trim() == api_name)
        })
    })
}

/// Whether a `ServiceSecurity` answer of `trustedInvokers` authorises PKI invocations of this
/// AEF: one `securityInfo` entry selected `PKI` and names our `aefId` or our `apiId`.
pub fn trusted_for_pki(service_security: &Value, aef_id: &str, api_id: Option<&str>) -> bool {
    let Some(infos) = service_security
        .get("securityInfo")
        .and_then(Value::as_array)
    else {
        return false;
    };
    infos.iter().any(|i| {
        let pki = i.get("selSecurityMethod").and_then(Value::as_str) == Some("PKI");
        let aef = i.get("aefId").and_then(Value::as_str) == Some(aef_id);
        let api = api_id.is_some() && i.get("apiId").and_then(Value::as_str) == api_id;
        pki && (aef || api)
    })
}

/// One invocation (TS 29.222 `Log`), without `apiId` (filled in when sent: the CCF's id of our
/// publication). Carries no query string, no body and no key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invocation {
    pub api_invoker_id: String,
    /// `PKI` or `OAUTH`.
    pub method: String,
    /// The HTTP status answered.
    pub result: u16,
    /// RFC 3339.
    pub invocation_time: String,
    /// Milliseconds.
    pub latency_ms: u64,
    /// The invoker's address and port.
    pub src_ip: Option<String>,
    pub src_port: Option<u16>,
    /// The HTTP version it came in: `HTTP_1_1` or `HTTP_2` (records spooled before this field
    /// existed read as HTTP/1.1).
    #[serde(default = "http_1_1")]
    pub protocol: String,
}

/// An invocation of `who` for unit tests.
#[cfg(test)]
pub(crate) fn test_invocation(who: &str) -> Invocation {
    Invocation {
        api_invoker_id: who.into(),
        method: "OAUTH".into(),
        result: 200,
        invocation_time: "2026-01-01T00:00:00Z".into(),
        latency_ms: 1,
        src_ip: None,
        src_port: None,
        protocol: "HTTP_1_1".into(),
    }
}

/// The TS 29.222 `InvocationLog` of `invocations` (all of one invoker) for `api_id`.
pub fn invocation_log(
    aef_id: &str,
    api_id: &str,
    invoker: &str,
    invocations: &[Invocation],
) -> Value {
    let logs: Vec<Value> = invocations
        .iter()
        .map(|i| {
            let mut log = json!({
                "apiId": api_id,
                "apiName": API_NAME,
                "apiVersion": API_VERSION,
                "resourceName": RESOURCE_NAME,
                "uri": format!("/{API_NAME}/{API_VERSION}/{RESOURCE_NAME}"),
                "protocol": i.protocol,
                "operation": "GET",
                "result": i.result.to_string(),
                "invocationTime": i.invocation_time,
                "invocationLatency": i.latency_ms,
            });
            if let (Some(ip), Some(port)) = (&i.src_ip, i.src_port) {
                let addr = if ip.contains(':') {
                    "ipv6Addr"
                } else {
                    "ipv4Addr"
                };
                log["srcInterface"] = json!({ addr: ip, "port": port });
            }
            log
        })
        .collect();
    json!({
        "aefId": aef_id,
        "apiInvokerId": invoker,
        "logs": logs,
        "supportedFeatures": "0"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(scope_grants(&s(&["3gpp#aef1:ss-kir"]), "aef1", "ss-kir"));
        assert!(scope_grants(
            &s(&["3gpp#aef0:x;aef1:y,ss-kir"]),
            "aef1",
            "ss-kir"
        ));
        assert!(scope_grants(
            &s(&["other", "aef1:ss-kir"]),
            "aef1",
            "ss-kir"
        ));
        assert!(!scope_grants(&s(&["3gpp#aef2:ss-kir"]), "aef1", "ss-kir"));
        assert!(!scope_grants(&s(&["3gpp#aef1:ss-kirx"]), "aef1", "ss-kir"));
        assert!(!scope_grants(&s(&["3gpp#aef1"]), "aef1", "ss-kir"));
        assert!(!scope_grants(&[], "aef1", "ss-kir"));
    }

    #[test]
    fn trusted_invokers() {
        let ok = json!({"securityInfo": [{"selSecurityMethod": "PKI", "aefId": "aef1"}]});
        assert!(trusted_for_pki(&ok, "aef1", None));
        assert!(!trusted_for_pki(&ok, "aef2", None));
        let by_api = json!({"securityInfo": [{"selSecurityMethod": "PKI", "apiId": "A1"}]});
        assert!(trusted_for_pki(&by_api, "aef1", Some("A1")));
        assert!(!trusted_for_pki(&by_api, "aef1", None));
        let oauth = json!({"securityInfo": [{"selSecurityMethod": "OAUTH", "aefId": "aef1"}]});
        assert!(!trusted_for_pki(&oauth, "aef1", None));
        assert!(!trusted_for_pki(&json!({}), "aef1", None));
    }

    #[test]
    fn description_advertises_only_what_is_served() {
        let d = service_api_description("aef1", "127.0.0.1", 8443, "HTTP_1_1");
        let p = &d["aefProfiles"][0];
        assert_eq!(p["securityMethods"], json!(["PKI", "OAUTH"]));
        assert_eq!(p["protocol"], "HTTP_1_1");
        let d2 = service_api_description("aef1", "127.0.0.1", 8443, protocol_of(true));
        assert_eq!(d2["aefProfiles"][0]["protocol"], "HTTP_2");
        assert_eq!(p["interfaceDescriptions"][0]["ipv4Addr"], "127.0.0.1");
        assert_eq!(d["apiName"], "ss-kir");
        let d = service_api_description("aef1", "kms.example.org", 1, "HTTP_1_1");
        assert_eq!(
            d["aefProfiles"][0]["interfaceDescriptions"][0]["fqdn"],
            "kms.example.org"
        );
    }
}
