//! Token lifetime, applied in one place to every source: [`open`](super::open) wraps the source
//! in a [`Lifetime`].
//!
//! - `expires`: a console past its time answers [`TokenError::Expired`] (the only check: the
//!   session relies on it).
//! - `single_use`: [`lookup`](TokenSource::lookup) never consumes; the session calls
//!   [`consume`](TokenSource::consume) once the browser is about to get `101`. The first
//!   `consume` in this process wins; later lookups and consumes answer
//!   [`TokenError::AlreadyUsed`]. Sources that several proxies share consume it in the store as
//!   well (Redis deletes the key, and only the caller whose `DEL` removed it wins), so the rule
//!   holds across proxies.
//! - SPICE: a browser opens several websockets (one per SPICE channel) with the same token. A
//!   single-use SPICE token therefore stays usable in this process for `spice_grace_seconds`
//!   (section `[tokens]`, default 30; 0 turns it off) after it was consumed. Only this process
//!   remembers it: put SPICE consoles behind a load balancer with client affinity. Binding the
//!   later channels to the first one's session is a later step; this table is where it goes.
//!
//! Consumed tokens are remembered by their SHA-256, not the token, until their `expires` has
//! passed (then they are refused as expired anyway); a single-use token without `expires` is
//! remembered for the life of the process, so give single-use tokens an expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::section::Section;
use super::{token_digest, Console, Kind, TokenError, TokenSource};

/// `[tokens] spice_grace_seconds` default.
pub const DEFAULT_SPICE_GRACE: Duration = Duration::from_secs(30);

/// How often, at most, the table of consumed tokens drops entries that no longer matter.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// A token source with `expires`, `single_use` and the SPICE grace time applied.
pub struct Lifetime {
    inner: Box<dyn TokenSource>,
    spice_grace: Duration,
    consumed: Mutex<Consumed>,
}

/// Single-use tokens this process has consumed.
struct Consumed {
    by_digest: HashMap<[u8; 32], Use>,
    last_prune: Instant,
}

/// One consumed token.
struct Use {
    /// When its console expires; after that the entry can go.
    expires: Option<SystemTime>,
    /// For a SPICE console: the console and when it was consumed, for the grace time.
    spice: Option<(Console, Instant)>,
}

impl Lifetime {
    /// Wraps `inner`, reading `[tokens] spice_grace_seconds` from `ini`.
    pub fn new(inner: Box<dyn TokenSource>, ini: &ini::Ini) -> Result<Self, TokenError> {
        let section = Section::new(ini, "tokens", &["spice_grace_seconds"])?;
        let grace = section.seconds("spice_grace_seconds", DEFAULT_SPICE_GRACE.as_secs_f64())?;
        Ok(Self::with_spice_grace(inner, grace))
    }

    /// Wraps `inner` with the given SPICE grace time (zero: none).
    pub fn with_spice_grace(inner: Box<dyn TokenSource>, spice_grace: Duration) -> Self {
        Self {
            inner,
            spice_grace,
            consumed: Mutex::new(Consumed {
                by_digest: HashMap::new(),
                last_prune: Instant::now(),
            }),
        }
    }

    /// What an already consumed token answers: its console within the SPICE grace time, else
    /// [`TokenError::AlreadyUsed`].
    fn again(&self, used: &Use) -> Result<Console, TokenError> {
        match &used.spice {
            Some((console, first)) if first.elapsed() < self.spice_grace => {
                unexpired(console.clone())
            }
            _ => Err(TokenError::AlreadyUsed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Consumed> {
        self.consumed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TokenSource for Lifetime {
    fn lookup(&self, token: &str) -> Result<Console, TokenError> {
        if let Some(used) = self.lock().by_digest.get(&token_digest(token)) {
            return self.again(used);
        }
        unexpired(self.inner.lookup(token)?)
    }

    fn consume(&self, token: &str, console: &Console) -> Result<(), TokenError> {
        if !console.single_use {
            return Ok(());
        }
        let digest = token_digest(token);
        if let Some(used) = self.lock().by_digest.get(&digest) {
            return self.again(used).map(drop);
        }
        let in_store = self.inner.consume(token, console);
        let mut consumed = self.lock();
        if let Some(used) = consumed.by_digest.get(&digest) {
            // Another thread of this process consumed it while the source was asked: a source
            // without shared state let both through, a shared store refused this one. Either
            // way the first consume decides (a second SPICE channel within its grace time).
            return self.again(used).map(drop);
        }
        in_store?;
        consumed.prune(self.spice_grace);
        let spice = (console.kind == Kind::Spice && !self.spice_grace.is_zero())
            .then(|| (console.clone(), Instant::now()));
        consumed.by_digest.insert(
            digest,
            Use {
                expires: console.expires,
                spice,
            },
        );
        Ok(())
    }

    fn reload(&self) -> Result<(), TokenError> {
        self.inner.reload()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn check(&self) -> Result<(), TokenError> {
        self.inner.check()
    }
}

impl Consumed {
    /// Drops entries whose console has expired (at most once a [`PRUNE_INTERVAL`]); their tokens
    /// are refused as expired without the table. SPICE entries stay for their grace time.
    fn prune(&mut self, spice_grace: Duration) {
        if self.last_prune.elapsed() < PRUNE_INTERVAL {
            return;
        }
        self.last_prune = Instant::now();
        let now = SystemTime::now();
        self.by_digest.retain(|_, used| {
            let in_grace = used
                .spice
                .as_ref()
                .is_some_and(|(_, first)| first.elapsed() < spice_grace);
            in_grace || used.expires.is_none_or(|t| now < t)
        });
    }
}

/// `console`, or [`TokenError::Expired`] when its `expires` has passed.
fn unexpired(console: Console) -> Result<Console, TokenError> {
    if console.is_expired(SystemTime::now()) {
        Err(TokenError::Expired)
    } else {
        Ok(console)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Answers every token with a copy of one console; counts lookups and consumes, and can
    /// refuse consumes as a shared store does once another proxy won.
    #[derive(Default)]
    struct Calls {
        lookups: AtomicUsize,
        consumes: AtomicUsize,
        store_refuses: AtomicBool,
    }

    struct Fixed(Console, Arc<Calls>);

    impl TokenSource for Fixed {
        fn lookup(&self, _: &str) -> Result<Console, TokenError> {
            self.1.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(self.0.clone())
        }
        fn consume(&self, _: &str, _: &Console) -> Result<(), TokenError> {
            self.1.consumes.fetch_add(1, Ordering::SeqCst);
            if self.1.store_refuses.load(Ordering::SeqCst) {
                Err(TokenError::AlreadyUsed)
            } else {
                Ok(())
            }
        }
        fn describe(&self) -> String {
            "fixed".into()
        }
    }

    fn wrapped(console: Console, grace: Duration) -> (Lifetime, Arc<Calls>) {
        let calls = Arc::new(Calls::default());
        (
            Lifetime::with_spice_grace(Box::new(Fixed(console, calls.clone())), grace),
            calls,
        )
    }

    fn single_use(kind: Kind) -> Console {
        let mut c = Console::new(kind, "h", 1);
        c.single_use = true;
        c
    }

    /// What a session does once its console is connected.
    fn admit(src: &Lifetime, token: &str) -> Result<Console, TokenError> {
        let console = src.lookup(token)?;
        src.consume(token, &console)?;
        Ok(console)
    }

    #[test]
    fn expired_consoles_are_refused() {
        let mut c = Console::new(Kind::Vnc, "h", 1);
        c.expires = Some(SystemTime::now() - Duration::from_secs(1));
        let (src, _) = wrapped(c, Duration::ZERO);
        assert_eq!(src.lookup("t"), Err(TokenError::Expired));
    }

    #[test]
    fn lookups_never_consume_and_the_first_consume_wins() {
        let c = single_use(Kind::Vnc);
        let (src, calls) = wrapped(c.clone(), DEFAULT_SPICE_GRACE);
        assert_eq!(src.lookup("a"), Ok(c.clone()));
        assert_eq!(
            src.lookup("a"),
            Ok(c.clone()),
            "a lookup alone uses nothing up"
        );
        assert_eq!(src.consume("a", &c), Ok(()));
        assert_eq!(src.lookup("a"), Err(TokenError::AlreadyUsed));
        assert_eq!(src.consume("a", &c), Err(TokenError::AlreadyUsed));
        assert_eq!(admit(&src, "b"), Ok(c));
        assert_eq!(
            calls.lookups.load(Ordering::SeqCst),
            3,
            "a consumed token is not looked up again"
        );
        assert_eq!(
            calls.consumes.load(Ordering::SeqCst),
            2,
            "nor consumed in the source again"
        );
    }

    #[test]
    fn a_token_the_shared_store_refuses_is_already_used() {
        let c = single_use(Kind::Vnc);
        let (src, calls) = wrapped(c.clone(), DEFAULT_SPICE_GRACE);
        calls.store_refuses.store(true, Ordering::SeqCst);
        assert_eq!(src.lookup("a"), Ok(c.clone()));
        assert_eq!(src.consume("a", &c), Err(TokenError::AlreadyUsed));
        calls.store_refuses.store(false, Ordering::SeqCst);
        assert_eq!(
            src.consume("a", &c),
            Ok(()),
            "what the store refused is not remembered as consumed here"
        );
    }

    #[test]
    fn consoles_that_are_not_single_use_are_never_consumed() {
        let c = Console::new(Kind::Vnc, "h", 1);
        let (src, calls) = wrapped(c.clone(), DEFAULT_SPICE_GRACE);
        for _ in 0..3 {
            assert_eq!(admit(&src, "m"), Ok(c.clone()));
        }
        assert_eq!(calls.consumes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_spice_token_stays_valid_for_the_grace_time() {
        let c = single_use(Kind::Spice);
        let (src, calls) = wrapped(c.clone(), Duration::from_millis(300));
        assert_eq!(src.lookup("s"), Ok(c.clone()));
        for _ in 0..3 {
            assert_eq!(admit(&src, "s").unwrap().kind, Kind::Spice);
        }
        assert_eq!(calls.consumes.load(Ordering::SeqCst), 1);
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(src.lookup("s"), Err(TokenError::AlreadyUsed));
        assert_eq!(src.consume("s", &c), Err(TokenError::AlreadyUsed));
        let (src, _) = wrapped(c, Duration::ZERO);
        assert!(admit(&src, "s").is_ok());
        assert_eq!(src.lookup("s"), Err(TokenError::AlreadyUsed));
    }

    #[test]
    fn racing_threads_get_one_console() {
        let (src, _) = wrapped(single_use(Kind::Vnc), DEFAULT_SPICE_GRACE);
        let wins = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| s.spawn(|| admit(&src, "r").is_ok()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|ok| *ok)
                .count()
        });
        assert_eq!(wins, 1);
    }
}
