//! [`KeySets`]: the KM-UU key sets (TS 33.180 §5.2, Annex D.3.2). A key set is issued from the
//! community's issuing certificate with the unsealed master secrets (held here, per
//! certificate), through an LRU cache and admission control; every delivery is audited before
//! it is made.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use super::admission::Admission;
use super::cache::KeySetCache;
use super::core::{Actor, NodeCore, NodeError};
use crate::audit::{AuditEvent, AuditKind};
use crate::config::NodeConfig;
use crate::kms::community::{master_aad, Certificate, Community};
use crate::kms::master::MasterSecrets;
use crate::kms::provision::{issue_key_set, KeySet};
use crate::kms::KmsError;

/// The key-set service of a node.
pub struct KeySets {
    core: Arc<NodeCore>,
    masters: Mutex<HashMap<String, Arc<MasterSecrets>>>,
    cache: KeySetCache,
    admission: Admission,
    periods_before: u64,
    periods_after: u64,
    /// The origin of the monotonic time admission control runs on.
    started: std::time::Instant,
}

impl Deref for KeySets {
    type Target = NodeCore;
    fn deref(&self) -> &NodeCore {
        &self.core
    }
}

impl KeySets {
    pub(super) fn new(core: Arc<NodeCore>, cfg: &NodeConfig) -> Self {
        Self {
            core,
            masters: Mutex::new(HashMap::new()),
            cache: KeySetCache::new(cfg.keyprov.cache_entries),
            admission: Admission::new(
                cfg.admission.max_inflight_issuance,
                cfg.admission.per_identity_burst,
                cfg.admission.identity_window_s,
            ),
            periods_before: cfg.keyprov.periods_before,
            periods_after: cfg.keyprov.periods_after,
            started: std::time::Instant::now(),
        }
    }

    /// The unsealed master secrets of a certificate (cached per certificate).
    fn masters(&self, cert: &Certificate) -> Result<Arc<MasterSecrets>, NodeError> {
        let mut m = self.masters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ms) = m.get(&cert.cert_uri) {
            return Ok(ms.clone());
        }
        let ms = Arc::new(MasterSecrets::unseal(
            &self.barrier,
            &master_aad(&cert.cert_uri),
            &cert.sealed_master,
        )?);
        m.insert(cert.cert_uri.clone(), ms.clone());
        Ok(ms)
    }

    /// The key set of `identity` for `period` (default: the one current at `now_unix`). Checks
    /// revocation and the period window; a cache miss goes through admission control. The one
    /// time `now_unix` decides the window, the default period and the issuing certificate.
    ///
    /// Nothing is audited here (see [`KeySets::key_set_for`] for a delivery to a principal).
    /// `community` must come from a linearizable read ([`NodeCore::community_for_host`]) made
    /// for this request: the revocation check below reads the same applied state.
    pub async fn key_set(
        self: &Arc<Self>,
        community: &Community,
        identity: &str,
        period: Option<u64>,
        now_unix: u64,
    ) -> Result<Arc<KeySet>, NodeError> {
        let (cert, requested) = self.plan(community, identity, period, now_unix)?;
        self.issued(community, cert, identity, requested, None)
            .await
    }

    /// The key set of `identity` like [`KeySets::key_set`], for delivery to `actor`: resolves
    /// only once a synced audit record says `actor` receives it (a delivery that cannot be
    /// audited is not made). Everything the record holds is known before the key set is
    /// issued, so a first issuance writes and syncs the record while the key set is computed
    /// instead of after it. Should the issuance, or the caller's rendering of its answer, fail
    /// after the record is synced, a [`AuditKind::KeySetWithheld`] record follows
    /// ([`KeySets::withheld`]): the log never shows less exposure than there was, and says
    /// when a recorded delivery was not made.
    pub async fn key_set_for(
        self: &Arc<Self>,
        community: &Community,
        identity: &str,
        period: Option<u64>,
        now_unix: u64,
        actor: &Actor,
    ) -> Result<Arc<KeySet>, NodeError> {
        let (cert, requested) = self.plan(community, identity, period, now_unix)?;
        self.issued(community, cert, identity, requested, Some(actor))
            .await
    }

    /// The checks of a key-set request and what they decide: the certificate to issue under
    /// and the period.
    fn plan(
        &self,
        community: &Community,
        identity: &str,
        period: Option<u64>,
        now_unix: u64,
    ) -> Result<(Certificate, u64), NodeError> {
        // Which period is current depends on this node's clock (the clock-skew rule).
        self.check_clock()?;
        if self
            .state()
            .revocation(&community.kms_uri, identity)?
            .is_some()
        {
            return Err(KmsError::IdentityRevoked.into());
        }
        let current = community
            .period
            .period_at_unix(now_unix)
            .ok_or(KmsError::BadTime)?;
        let (first, last) = (
            current.saturating_sub(self.periods_before),
            current.saturating_add(self.periods_after),
        );
        let requested = period.unwrap_or(current);
        if requested < first || requested > last {
            return Err(KmsError::PeriodOutOfWindow {
                requested,
                first,
                last,
            }
            .into());
        }
        let cert = community.issuing_certificate(now_unix)?.clone();
        Ok((cert, requested))
    }

    /// The key set of `identity` for the key period current at `now_unix` under `cert`, one of
    /// `community`'s certificates valid then, whether or not it is the issuing one (KM-E signs
    /// a rotation with its federation identity under the previous certificate). Checks
    /// revocation like [`KeySets::key_set`].
    pub async fn key_set_under(
        self: &Arc<Self>,
        community: &Community,
        cert: &Certificate,
        identity: &str,
        now_unix: u64,
    ) -> Result<Arc<KeySet>, NodeError> {
        if self
            .state()
            .revocation(&community.kms_uri, identity)?
            .is_some()
        {
            return Err(KmsError::IdentityRevoked.into());
        }
        if !cert.is_valid_at(now_unix) {
            return Err(KmsError::NoValidCertificate(cert.cert_uri.clone()).into());
        }
        let current = community
            .period
            .period_at_unix(now_unix)
            .ok_or(KmsError::BadTime)?;
        self.issued(community, cert.clone(), identity, current, None)
            .await
    }

    /// `identity`'s key set of `requested` under `cert`: from the cache, or issued through
    /// admission control off the async workers; with `deliver_to`, its delivery audited (the
    /// record synced while a first issuance runs).
    async fn issued(
        self: &Arc<Self>,
        community: &Community,
        cert: Certificate,
        identity: &str,
        requested: u64,
        deliver_to: Option<&Actor>,
    ) -> Result<Arc<KeySet>, NodeError> {
        let event = deliver_to.map(|actor| {
            delivery_event(
                actor,
                identity,
                requested,
                &community.kms_uri,
                &cert.cert_uri,
            )
        });
        let cached = self.cache.get(&cert.cert_uri, identity, requested);
        self.metrics.cache(cached.is_some());
        if let Some(set) = cached {
            if let Some(event) = event {
                self.record_delivery(event).await?;
            }
            return Ok(set);
        }
        let _permit = self
            .admission
            .try_admit(identity, self.started.elapsed())
            .map_err(NodeError::Shed)?;
        let masters = self.masters(&cert)?;
        let community = community.clone();
        let identity_owned = identity.to_owned();
        let started = std::time::Instant::now();
        // About half a millisecond of CPU: off the async workers.
        let issue = async {
            let set = actix_web::rt::task::spawn_blocking(move || {
                issue_key_set(&community, &cert, &masters, &identity_owned, requested)
            })
            .await
            .map_err(|e| NodeError::Internal(format!("issuance task failed: {e}")))??;
            self.metrics.issuance(started.elapsed().as_secs_f64());
            Ok::<_, NodeError>(Arc::new(set))
        };
        let set = match event {
            None => issue.await?,
            Some(event) => {
                let withheld = event.clone();
                let (set, audited) = tokio::join!(issue, self.record_delivery(event));
                match (set, audited) {
                    (Ok(set), Ok(())) => set,
                    (Ok(set), Err(e)) => {
                        // Issued but not audited: cached for the next try, not delivered.
                        self.cache.insert(set);
                        return Err(e);
                    }
                    (Err(e), audited) => {
                        if audited.is_ok() {
                            self.withheld_event(withheld);
                        }
                        return Err(e);
                    }
                }
            }
        };
        self.cache.insert(set.clone());
        Ok(set)
    }

    /// Records a delivery and resolves once a record of this exposure is synced (see
    /// `audit::exposure`); an error means the delivery must not be made.
    async fn record_delivery(&self, event: AuditEvent) -> Result<(), NodeError> {
        self.audit
            .record_exposure(event)
            .await
            .map_err(|e| NodeError::Internal(format!("audit: {e}")))
    }

    /// Records that the delivery of `set` to `actor`, audited by [`KeySets::key_set_for`],
    /// was not made (the caller could not render its answer). Not waited for: it adds to the
    /// log, it never stands between a key and its record.
    pub fn withheld(&self, set: &KeySet, actor: &Actor) {
        self.withheld_event(delivery_event(
            actor,
            &set.user_uri,
            set.period_no,
            &set.kms_uri,
            &set.cert_uri,
        ));
    }

    fn withheld_event(&self, mut event: AuditEvent) {
        event.kind = AuditKind::KeySetWithheld;
        if let Err(e) = self.audit.queue(event) {
            tracing::warn!(error = %e, "audit: the record of a withheld key set was not queued");
        }
    }

    /// Drops the unsealed master secrets, and the cached key sets, of every certificate this
    /// node's applied state shows revoked — also when another node proposed the revocation.
    /// Reads the local state (no barrier: it acts on what was applied). Returns how many
    /// certificates' secrets were dropped.
    pub fn forget_revoked_masters(&self) -> Result<usize, NodeError> {
        if self
            .masters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            return Ok(0);
        }
        let revoked: std::collections::HashSet<String> = self
            .state()
            .communities()?
            .into_iter()
            .flat_map(|c| c.certificates)
            .filter(|c| c.revoked)
            .map(|c| c.cert_uri)
            .collect();
        let mut m = self.masters.lock().unwrap_or_else(|p| p.into_inner());
        let before = m.len();
        m.retain(|uri, _| !revoked.contains(uri));
        let dropped = before - m.len();
        drop(m);
        if dropped > 0 {
            self.cache.purge(|s| revoked.contains(&s.cert_uri));
        }
        Ok(dropped)
    }

    /// The certificates whose master secrets this node holds unsealed.
    pub fn unsealed_certificates(&self) -> Vec<String> {
        let m = self.masters.lock().unwrap_or_else(|p| p.into_inner());
        m.keys().cloned().collect()
    }

    /// Forgets what this node holds of certificate `cert_uri` after its revocation: cached key
    /// sets and the unsealed master secrets.
    pub(super) fn forget_certificate(&self, cert_uri: &str) {
        self.cache.purge(|s| s.cert_uri == cert_uri);
        self.masters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(cert_uri);
    }

    /// Forgets the cached key sets of `identity` in `kms_uri` after its revocation.
    pub(super) fn forget_identity(&self, kms_uri: &str, identity: &str) {
        self.cache
            .purge(|s| s.kms_uri == kms_uri && s.user_uri == identity);
    }

    pub fn admission_inflight(&self) -> usize {
        self.admission.inflight()
    }
}

/// The audit record of the delivery of `identity`'s key set of `period` under `cert_uri` to
/// `actor`.
fn delivery_event(
    actor: &Actor,
    identity: &str,
    period: u64,
    kms_uri: &str,
    cert_uri: &str,
) -> AuditEvent {
    AuditEvent {
        kind: AuditKind::KeySetDelivered,
        actor: actor.0.clone(),
        identity: Some(identity.to_owned()),
        key_period: Some(period),
        community: Some(kms_uri.to_owned()),
        detail: Some(cert_uri.to_owned()),
    }
}
