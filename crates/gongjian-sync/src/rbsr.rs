//! Range-based set reconciliation over document summaries (after Meyer,
//! "Range-Based Set Reconciliation", and negentropy): both sides sort their
//! items by key; a range whose fingerprints agree is skipped, a small range
//! is listed, a large one is split. Bytes grow with the differences, not
//! with the set. Each side only ever lists items its peer may see.

use gongjian_identity::Hash;
use serde::{Deserialize, Serialize};

/// Which set a reconciliation is about: records first, then documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SetId {
    /// Signed records (certificates, revocations, geneses, heads
    /// announcements), keyed by hash, value zero.
    Records,
    /// Documents, keyed by id, valued by a digest of their heads.
    Docs,
}

/// An item's key: a record hash or a document id.
pub type Key = [u8; 32];

/// One element of a set: a key and a 16-byte summary of its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Item {
    pub key: Key,
    pub value: [u8; 16],
}

impl Item {
    /// A document's item: its id and the digest of its sorted heads.
    pub fn doc(doc: &gongjian_identity::DocId, heads: &[Hash]) -> Item {
        let mut parts: Vec<&[u8]> = vec![b"gongjian/v1/doc-state"];
        for h in heads {
            parts.push(h.as_bytes());
        }
        let d = Hash::of_parts(&parts);
        let mut value = [0u8; 16];
        value.copy_from_slice(&d.as_bytes()[..16]);
        Item {
            key: *doc.as_bytes(),
            value,
        }
    }

    /// A record's item: its hash (records never change).
    pub fn record(hash: &Hash) -> Item {
        Item {
            key: *hash.as_bytes(),
            value: [0; 16],
        }
    }

    fn digest(&self) -> u128 {
        let d = Hash::of_parts(&[b"gongjian/v1/rbsr-item", &self.key, &self.value]);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d.as_bytes()[..16]);
        u128::from_be_bytes(b)
    }
}

/// The fingerprint of a range: a hash of the wrapping sum of its items'
/// digests and their count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint(pub [u8; 16]);

/// The upper end of a range, exclusive; `None` is past every key.
pub type Bound = Option<Key>;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// The sender holds the same items here.
    Skip,
    /// The sender's fingerprint of the range.
    Fingerprint(Fingerprint),
    /// The sender's items in the range; `reply`: send yours back if they
    /// differ.
    Items { items: Vec<Item>, reply: bool },
}

/// A range from the previous range's upper bound (or the start) to `upper`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub upper: Bound,
    pub mode: Mode,
}

/// A range of at most this many items is listed rather than split.
pub const LIST_THRESHOLD: usize = 16;
/// A range is split in this many parts.
pub const SPLIT: usize = 16;
/// Most ranges and listed items one reconcile message may carry.
pub const MAX_RANGES: usize = 4096;
pub const MAX_ITEMS: usize = 16_384;

/// Why a peer's reconcile message is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RbsrError {
    #[error("range {0}: upper bounds must increase and the last range must be unbounded")]
    Bounds(usize),
    #[error("range {0}: listed items must be sorted, unique and inside the range")]
    Items(usize),
    #[error("too many ranges or items ({0})")]
    TooMany(usize),
}

/// What answering a reconcile message gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The ranges to send back; empty when every range agreed.
    pub reply: Vec<Range>,
    /// Keys the peer holds in a state this side lacks.
    pub wanted: Vec<Key>,
}

/// What is used of a reply's caps; one range stays in reserve for the
/// closing fingerprint.
#[derive(Debug, Default)]
struct Budget {
    ranges: usize,
    items: usize,
}

impl Budget {
    fn take(&mut self, ranges: usize, items: usize) -> bool {
        if self.ranges + ranges >= MAX_RANGES || self.items + items > MAX_ITEMS {
            return false;
        }
        self.ranges += ranges;
        self.items += items;
        true
    }
}

/// A sorted set of items with prefix sums of their digests, so any range's
/// fingerprint costs two binary searches.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    items: Vec<Item>,
    acc: Vec<u128>,
}

impl Snapshot {
    pub fn new(mut items: Vec<Item>) -> Snapshot {
        items.sort();
        items.dedup_by(|a, b| a.key == b.key);
        let mut acc = Vec::with_capacity(items.len() + 1);
        let mut sum = 0u128;
        acc.push(sum);
        for it in &items {
            sum = sum.wrapping_add(it.digest());
            acc.push(sum);
        }
        Snapshot { items, acc }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn index(&self, bound: &Bound) -> usize {
        match bound {
            None => self.items.len(),
            Some(k) => self.items.partition_point(|it| it.key < *k),
        }
    }

    fn fingerprint(&self, a: usize, b: usize) -> Fingerprint {
        let sum = self.acc[b].wrapping_sub(self.acc[a]);
        let d = Hash::of_parts(&[
            b"gongjian/v1/rbsr-range",
            &sum.to_be_bytes(),
            &((b - a) as u64).to_be_bytes(),
        ]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&d.as_bytes()[..16]);
        Fingerprint(out)
    }

    /// The opening message: the whole set as one range.
    pub fn initial(&self) -> Vec<Range> {
        let mode = if self.items.len() <= LIST_THRESHOLD {
            Mode::Items {
                items: self.items.clone(),
                reply: true,
            }
        } else {
            Mode::Fingerprint(self.fingerprint(0, self.items.len()))
        };
        vec![Range { upper: None, mode }]
    }

    fn split(&self, a: usize, b: usize, upper: Bound, out: &mut Vec<Range>) {
        let n = b - a;
        for i in 0..SPLIT {
            let (s, e) = (a + n * i / SPLIT, a + n * (i + 1) / SPLIT);
            let bound = if i + 1 == SPLIT {
                upper
            } else {
                Some(self.items[e].key)
            };
            out.push(Range {
                upper: bound,
                mode: Mode::Fingerprint(self.fingerprint(s, e)),
            });
        }
    }

    /// Answers a peer's ranges.
    pub fn respond(&self, ranges: &[Range]) -> Result<Response, RbsrError> {
        let listed: usize = ranges
            .iter()
            .map(|r| match &r.mode {
                Mode::Items { items, .. } => items.len(),
                _ => 0,
            })
            .sum();
        if ranges.len() > MAX_RANGES || listed > MAX_ITEMS {
            return Err(RbsrError::TooMany(ranges.len().max(listed)));
        }
        // Checked whole first, so a bad range is refused wherever it is.
        let mut lower: Option<Key> = None;
        for (i, r) in ranges.iter().enumerate() {
            let last = i + 1 == ranges.len();
            match (&r.upper, last) {
                (None, true) => {}
                (Some(u), false) if lower.is_none_or(|l| *u > l) => {}
                _ => return Err(RbsrError::Bounds(i)),
            }
            if let Mode::Items { items, .. } = &r.mode {
                let inside = |it: &Item| {
                    lower.is_none_or(|l| it.key >= l) && r.upper.is_none_or(|u| it.key < u)
                };
                if !items.windows(2).all(|w| w[0].key < w[1].key) || !items.iter().all(inside) {
                    return Err(RbsrError::Items(i));
                }
            }
            lower = r.upper;
        }
        let mut out = Response::default();
        // The reply stays within the caps the peer checks. Once the next
        // range's answer would not fit, the rest of the key space goes back
        // as one fingerprint, which the peer splits or lists next round; the
        // first range always fits, so every round makes progress.
        let mut budget = Budget::default();
        let mut lower: Option<Key> = None;
        for r in ranges {
            // `lower` None is the start of the key space, `upper` None its end.
            let a = lower.map_or(0, |l| self.index(&Some(l)));
            let b = self.index(&r.upper);
            let (need, listed) = match &r.mode {
                Mode::Fingerprint(fp) if self.fingerprint(a, b) != *fp => {
                    if b - a <= LIST_THRESHOLD {
                        (1, b - a)
                    } else {
                        (SPLIT, 0)
                    }
                }
                // The peer listed its few items here: list ours back if
                // they fit in what is left of the cap, however many.
                Mode::Items { items, reply: true }
                    if self.items[a..b]
                        .iter()
                        .any(|m| items.binary_search(m).is_err()) =>
                {
                    if b - a <= LIST_THRESHOLD || budget.items + (b - a) <= MAX_ITEMS {
                        (1, b - a)
                    } else {
                        (SPLIT, 0)
                    }
                }
                _ => (1, 0),
            };
            if !budget.take(need, listed) {
                out.reply.push(Range {
                    upper: None,
                    mode: Mode::Fingerprint(self.fingerprint(a, self.items.len())),
                });
                return Ok(merge(out));
            }
            match &r.mode {
                Mode::Skip => out.reply.push(Range {
                    upper: r.upper,
                    mode: Mode::Skip,
                }),
                Mode::Fingerprint(fp) if self.fingerprint(a, b) == *fp => out.reply.push(Range {
                    upper: r.upper,
                    mode: Mode::Skip,
                }),
                Mode::Fingerprint(_) if need == SPLIT => {
                    self.split(a, b, r.upper, &mut out.reply);
                }
                Mode::Fingerprint(_) => out.reply.push(Range {
                    upper: r.upper,
                    mode: Mode::Items {
                        items: self.items[a..b].to_vec(),
                        reply: true,
                    },
                }),
                Mode::Items { items, reply } => {
                    let mine = &self.items[a..b];
                    for t in items {
                        if mine.binary_search(t).is_err() {
                            out.wanted.push(t.key);
                        }
                    }
                    let they_lack = *reply && mine.iter().any(|m| items.binary_search(m).is_err());
                    if !they_lack {
                        out.reply.push(Range {
                            upper: r.upper,
                            mode: Mode::Skip,
                        });
                    } else if need == SPLIT {
                        // Far more here than the peer listed: narrow it down
                        // rather than list them all.
                        self.split(a, b, r.upper, &mut out.reply);
                    } else {
                        out.reply.push(Range {
                            upper: r.upper,
                            mode: Mode::Items {
                                items: mine.to_vec(),
                                reply: false,
                            },
                        });
                    }
                }
            }
            lower = r.upper;
        }
        Ok(merge(out))
    }
}

/// Consecutive skips merge; all skips means agreement: nothing to send.
fn merge(mut out: Response) -> Response {
    let mut merged: Vec<Range> = Vec::with_capacity(out.reply.len());
    for r in out.reply.drain(..) {
        if let (Some(prev), Mode::Skip) = (merged.last_mut(), &r.mode)
            && prev.mode == Mode::Skip
        {
            prev.upper = r.upper;
            continue;
        }
        merged.push(r);
    }
    if merged.iter().all(|r| r.mode == Mode::Skip) {
        merged.clear();
    }
    out.reply = merged;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(k: u32, v: u8) -> Item {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&k.to_be_bytes());
        Item {
            key,
            value: [v; 16],
        }
    }

    /// Runs reconciliation to the end; returns what each side wanted and
    /// the bytes of the item lists exchanged.
    fn run(a: &Snapshot, b: &Snapshot) -> (Vec<Key>, Vec<Key>, usize) {
        let mut msg = a.initial();
        let mut sides = [(a, Vec::new()), (b, Vec::new())];
        let mut turn = 1;
        let mut rounds = 0;
        while !msg.is_empty() {
            rounds += 1;
            assert!(rounds < MAX_ROUNDS_TEST, "reconciliation does not end");
            let r = sides[turn].0.respond(&msg).unwrap();
            let listed: usize = r
                .reply
                .iter()
                .map(|x| match &x.mode {
                    Mode::Items { items, .. } => items.len(),
                    _ => 0,
                })
                .sum();
            assert!(r.reply.len() <= MAX_RANGES && listed <= MAX_ITEMS);
            sides[turn].1.extend(r.wanted);
            msg = r.reply;
            turn ^= 1;
        }
        let [(_, wa), (_, wb)] = sides;
        (wa, wb, rounds)
    }

    #[test]
    fn finds_exactly_the_differences() {
        let mut xs: Vec<Item> = (0..5000).map(|k| item(k * 3, 1)).collect();
        let ys_items = {
            let mut ys = xs.clone();
            ys[10].value = [2; 16]; // changed on b
            ys.remove(4000); // a has it, b lacks it
            ys.push(item(7, 1)); // b has it, a lacks it
            ys
        };
        xs.push(item(100_000, 9)); // a only
        let (a, b) = (Snapshot::new(xs), Snapshot::new(ys_items));
        let (mut wa, mut wb, rounds) = run(&a, &b);
        wa.sort();
        wb.sort();
        assert_eq!(wa, vec![item(7, 1).key, item(30, 1).key]);
        assert_eq!(
            wb,
            vec![item(30, 1).key, item(12_000, 1).key, item(100_000, 9).key]
        );
        assert!(rounds <= 8, "{rounds} rounds");
    }

    const MAX_ROUNDS_TEST: usize = 256;

    #[test]
    fn lopsided_sets_stay_within_the_caps() {
        // A peer that holds a few items meets one that holds 150,000: every
        // reply stays within the caps the other side enforces, and each
        // side ends up wanting exactly what it lacks.
        let big: Vec<Item> = (0..150_000).map(|k| item(k * 2, 1)).collect();
        let small: Vec<Item> = vec![item(1, 1), item(4, 1), item(299_999, 7)];
        let (a, b) = (Snapshot::new(big), Snapshot::new(small.clone()));
        for (x, y, flip) in [(&a, &b, false), (&b, &a, true)] {
            let (wx, wy, rounds) = run(x, y);
            let (wbig, wsmall) = if flip { (wy, wx) } else { (wx, wy) };
            // A key may be wanted more than once (the session fetches it once).
            let (mut wbig, mut wsmall) = (wbig, wsmall);
            wbig.sort();
            wbig.dedup();
            wsmall.sort();
            wsmall.dedup();
            assert_eq!(wbig, vec![item(1, 1).key, item(299_999, 7).key]);
            assert_eq!(wsmall.len(), 150_000 - 1, "all but item 4");
            eprintln!("lopsided: {rounds} rounds");
            assert!(rounds < 64, "{rounds} rounds");
        }
    }

    #[test]
    fn equal_sets_agree_in_one_round() {
        let xs: Vec<Item> = (0..10_000).map(|k| item(k, 1)).collect();
        let (a, b) = (Snapshot::new(xs.clone()), Snapshot::new(xs));
        let (wa, wb, rounds) = run(&a, &b);
        assert!(wa.is_empty() && wb.is_empty());
        assert_eq!(rounds, 1);
    }

    #[test]
    fn empty_sides() {
        let xs: Vec<Item> = (0..100).map(|k| item(k, 1)).collect();
        let (a, b) = (Snapshot::new(xs), Snapshot::new(vec![]));
        let (wa, wb, _) = run(&a, &b);
        assert!(wa.is_empty());
        assert_eq!(wb.len(), 100);
        let (wa, wb, _) = run(&b, &a);
        assert_eq!(wa.len(), 100);
        assert!(wb.is_empty());
    }

    #[test]
    fn bad_ranges_are_refused() {
        let s = Snapshot::new((0..10).map(|k| item(k, 1)).collect());
        let unbounded_first = vec![
            Range {
                upper: None,
                mode: Mode::Skip,
            },
            Range {
                upper: None,
                mode: Mode::Skip,
            },
        ];
        assert_eq!(s.respond(&unbounded_first), Err(RbsrError::Bounds(0)));
        let unsorted = vec![Range {
            upper: None,
            mode: Mode::Items {
                items: vec![item(5, 1), item(2, 1)],
                reply: true,
            },
        }];
        assert_eq!(s.respond(&unsorted), Err(RbsrError::Items(0)));
        let outside = vec![
            Range {
                upper: Some(item(3, 0).key),
                mode: Mode::Items {
                    items: vec![item(5, 1)],
                    reply: true,
                },
            },
            Range {
                upper: None,
                mode: Mode::Skip,
            },
        ];
        assert_eq!(s.respond(&outside), Err(RbsrError::Items(0)));
    }
}
