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
/// The protocol published. The service listener serves HTTP/1.1 and HTTP/2 (by ALPN,
/// `tests/http_versions.rs`); an `AefProfile` names one protocol, and HTTP/1.1 is the one every
/// invoker can use.
pub const PROTOCOL: &str = "HTTP_1_1";

/// The ACL principal of a CAPIF invoker.
pub fn invoker_principal(api_invoker_id: &str) -> String {
    format!("capif:{api_invoker_id}")
}

/// The `ServiceAPIDescription` of `ss-kir` served by AEF `aef_id` at `host:port`.
pub fn service_api_description(aef_id: &str, host: &str, port: u16) -> Value {
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
            "protocol": PROTOCOL,
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
                "protocol": PROTOCOL,
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
        let d = service_api_description("aef1", "127.0.0.1", 8443);
        let p = &d["aefProfiles"][0];
        assert_eq!(p["securityMethods"], json!(["PKI", "OAUTH"]));
        assert_eq!(p["protocol"], "HTTP_1_1");
        assert_eq!(p["interfaceDescriptions"][0]["ipv4Addr"], "127.0.0.1");
        assert_eq!(d["apiName"], "ss-kir");
        let d = service_api_description("aef1", "kms.example.org", 1);
        assert_eq!(
            d["aefProfiles"][0]["interfaceDescriptions"][0]["fqdn"],
            "kms.example.org"
        );
    }
}
