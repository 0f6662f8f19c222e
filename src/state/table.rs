//! The state table, `.process-guardian/states.table`: a copy of each
//! process's state, so that `status` of many reads a process in one `pread`
//! instead of an open, a read and a close of `run/<name>.json` (the three
//! cost more than all the rest of a row).
//!
//! `run/<name>.json` stays the truth; the table is a cache of it with these
//! rules:
//!
//! - Whoever saves a state (`RunState::save`) copies it here right after the
//!   JSON's atomic rename, so a record is the JSON as of the last save but
//!   for the instant between the two writes.
//! - A supervisor clears its name's record when it takes its liveness lock,
//!   before it reads or writes anything else: from then on the record is
//!   either absent or written by that supervisor.
//! - A reader trusts a record only while the name's supervisor holds its
//!   lock, and only if the record is whole: its name, its lengths and its
//!   checksum agree. Anything else (a hole, a torn or foreign record, a
//!   state too long for a record, a table that is not a regular file of
//!   ours) sends the reader to the JSON, as if there were no table. A record
//!   of a supervisor that is gone is never read: its lock is free.
//!
//! A record is at a fixed place, slot `hash(name) % SLOTS`, so no writer
//! ever waits for another: two names sharing a slot overwrite each other,
//! and the one whose name is not in the slot is read from its JSON. The file
//! is sparse: only the slots written take space.
//!
//! A record: `PGS2`, the name's length (u16), the body's length (u16), the
//! checksum (u64, of all but itself), the name, the body: the state's
//! fields in their order (see `Body`), the definition as its hash (its text
//! can be long; the hash tells whether the registry's entry changed).
//! Little-endian. Binary, not JSON: parsing a state's JSON cost more than
//! everything else in a row of `status`.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::{Desired, ExitRecord, Phase, RunState};
use crate::workspace::Workspace;

/// Bytes a record takes; a state that does not fit gets no record.
pub const RECORD: usize = 1024;
/// Slots in the table: 8 MiB of address, holes where nothing was written.
pub const SLOTS: u64 = 8192;
const MAGIC: [u8; 4] = *b"PGS2";
/// Bytes read first: a record of a running process takes about 200.
const FIRST: usize = 256;
const HEADER: usize = 16;
const SUM: std::ops::Range<usize> = 8..16;

/// Where the record of `name` is.
pub fn offset(name: &str) -> u64 {
    (crate::fnv::hash(name.as_bytes()) % SLOTS) * RECORD as u64
}

/// The hash a record keeps of a definition's JSON text.
pub fn definition_hash(text: &str) -> u64 {
    crate::fnv::hash(text.as_bytes())
}

/// `definition_hash` of `entry` as a definition's text, hashed as it is
/// written rather than written out first.
pub fn hash_definition_of(entry: &crate::registry::Entry) -> Option<u64> {
    struct Hashing(crate::fnv::Hasher);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            std::hash::Hasher::write(&mut self.0, bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Hashing(crate::fnv::Hasher::default());
    serde_json::to_writer(&mut h, entry).ok()?;
    Some(std::hash::Hasher::finish(&h.0))
}

/// A checksum of a record but its own field, eight bytes a step: it only
/// needs to see a torn or stray write (only our own processes can write the
/// file), not to resist a chosen one.
fn checksum(record: &[u8]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15 ^ record.len() as u64;
    let mut mix = |word: u64| {
        h = (h ^ word)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29)
    };
    let (head, rest) = record.split_at(SUM.start.min(record.len()));
    let rest = rest.get(SUM.len()..).unwrap_or_default();
    for part in [head, rest] {
        let mut words = part.chunks_exact(8);
        for w in &mut words {
            mix(u64::from_le_bytes(w.try_into().unwrap_or_default()));
        }
        let tail = words.remainder();
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        mix(u64::from_le_bytes(last) ^ ((tail.len() as u64) << 56));
    }
    h
}

/// The record of `name` holding `state`, or `None` if it does not fit.
pub fn encode(name: &str, state: &RunState) -> Option<Vec<u8>> {
    let mut record = Vec::with_capacity(512);
    record.extend_from_slice(&MAGIC);
    record.extend_from_slice(&u16::try_from(name.len()).ok()?.to_le_bytes());
    record.extend_from_slice(&[0; 2 + 8]);
    record.extend_from_slice(name.as_bytes());
    let body = record.len();
    Body(&mut record).state(state)?;
    let body_len = u16::try_from(record.len() - body).ok()?;
    record[6..8].copy_from_slice(&body_len.to_le_bytes());
    if record.len() > RECORD {
        return None;
    }
    let sum = checksum(&record);
    record[SUM].copy_from_slice(&sum.to_le_bytes());
    Some(record)
}

/// Writes a state's fields, in their order.
struct Body<'a>(&'a mut Vec<u8>);

impl Body<'_> {
    fn state(&mut self, state: &RunState) -> Option<()> {
        // Every field named: a field added to `RunState` does not compile
        // here until the record carries it.
        let RunState {
            desired,
            phase,
            boot_id,
            pid,
            pid_start,
            supervisor_pid,
            supervisor_start,
            started_at,
            restarts,
            quick_crashes,
            last_exit,
            next_start_at,
            failed_at,
            stopped_by,
            message,
            ready,
            usage,
            definition,
            definition_hash: hash,
            updated_at,
        } = state;
        self.byte(match desired {
            Desired::Running => 0,
            Desired::Stopped => 1,
        });
        self.byte(match phase {
            Phase::Running => 0,
            Phase::Backoff => 1,
            Phase::Stopped => 2,
            Phase::Completed => 3,
            Phase::Exited => 4,
            Phase::Failed => 5,
        });
        self.text(boot_id)?;
        self.opt(*pid, |b, v| b.bytes(&v.to_le_bytes()));
        self.opt(*pid_start, |b, v| b.bytes(&v.to_le_bytes()));
        self.opt(*supervisor_pid, |b, v| b.bytes(&v.to_le_bytes()));
        self.opt(*supervisor_start, |b, v| b.bytes(&v.to_le_bytes()));
        self.opt_text(started_at)?;
        self.bytes(&restarts.to_le_bytes());
        self.bytes(&quick_crashes.to_le_bytes());
        match last_exit {
            None => self.byte(0),
            Some(ExitRecord {
                code,
                signal,
                at,
                uptime_s,
            }) => {
                self.byte(1);
                self.opt(*code, |b, v| b.bytes(&v.to_le_bytes()));
                self.opt_text(signal)?;
                self.text(at)?;
                self.bytes(&uptime_s.to_le_bytes());
            }
        }
        self.opt_text(next_start_at)?;
        self.opt_text(failed_at)?;
        self.opt_text(stopped_by)?;
        self.opt_text(message)?;
        self.opt(*ready, |b, v| b.byte(u8::from(v)));
        self.opt(*usage, |b, v| {
            b.bytes(&v.cpu_pct.to_le_bytes());
            b.bytes(&v.rss_bytes.to_le_bytes());
        });
        let hash = match definition {
            Some(text) => Some(definition_hash(text.get())),
            None => *hash,
        };
        self.opt(hash, |b, v| b.bytes(&v.to_le_bytes()));
        self.opt_text(updated_at)
    }

    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn opt<T>(&mut self, v: Option<T>, put: impl FnOnce(&mut Self, T)) {
        match v {
            None => self.byte(0),
            Some(v) => {
                self.byte(1);
                put(self, v);
            }
        }
    }
    fn text(&mut self, s: &str) -> Option<()> {
        // Longer than a record: it does not fit anyway.
        let len = u16::try_from(s.len())
            .ok()
            .filter(|&l| usize::from(l) <= RECORD)?;
        self.bytes(&len.to_le_bytes());
        self.bytes(s.as_bytes());
        Some(())
    }
    fn opt_text(&mut self, s: &Option<String>) -> Option<()> {
        match s {
            None => self.byte(0),
            Some(s) => {
                self.byte(1);
                self.text(s)?;
            }
        }
        Some(())
    }
}

/// Reads a state's fields, as `Body` wrote them.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn byte(&mut self) -> Option<u8> {
        Some(self.take::<1>()?[0])
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take()?))
    }
    fn f64(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take()?))
    }
    /// `Some(None)` for an absent value, `None` for a damaged one.
    fn opt<T>(&mut self, get: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.byte()? {
            0 => Some(None),
            1 => get(self).map(Some),
            _ => None,
        }
    }
    fn text(&mut self) -> Option<String> {
        let len = usize::from(u16::from_le_bytes(self.take()?));
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        String::from_utf8(s.to_vec()).ok()
    }
    fn opt_text(&mut self) -> Option<Option<String>> {
        self.opt(Self::text)
    }

    fn state(&mut self) -> Option<RunState> {
        let desired = match self.byte()? {
            0 => Desired::Running,
            1 => Desired::Stopped,
            _ => return None,
        };
        let phase = match self.byte()? {
            0 => Phase::Running,
            1 => Phase::Backoff,
            2 => Phase::Stopped,
            3 => Phase::Completed,
            4 => Phase::Exited,
            5 => Phase::Failed,
            _ => return None,
        };
        let state = RunState {
            desired,
            phase,
            boot_id: self.text()?,
            pid: self.opt(Self::i32)?,
            pid_start: self.opt(Self::u64)?,
            supervisor_pid: self.opt(Self::i32)?,
            supervisor_start: self.opt(Self::u64)?,
            started_at: self.opt_text()?,
            restarts: self.u32()?,
            quick_crashes: self.u32()?,
            last_exit: self.opt(|f| {
                Some(ExitRecord {
                    code: f.opt(Self::i32)?,
                    signal: f.opt_text()?,
                    at: f.text()?,
                    uptime_s: f.f64()?,
                })
            })?,
            next_start_at: self.opt_text()?,
            failed_at: self.opt_text()?,
            stopped_by: self.opt_text()?,
            message: self.opt_text()?,
            ready: self.opt(|f| match f.byte()? {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            })?,
            usage: self.opt(|f| {
                Some(crate::proc::Usage {
                    cpu_pct: f.f64()?,
                    rss_bytes: f.u64()?,
                })
            })?,
            definition: None,
            definition_hash: self.opt(Self::u64)?,
            updated_at: self.opt_text()?,
        };
        // What was written, all of it and nothing more.
        self.0.is_empty().then_some(state)
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_le_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

/// The state in a record read from the slot of `name`, if the record is
/// whole and is `name`'s.
pub fn decode(name: &str, bytes: &[u8]) -> Option<RunState> {
    if bytes.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    let name_len = u16_at(bytes, 4)?;
    let body_len = u16_at(bytes, 6)?;
    let body = HEADER.checked_add(name_len)?;
    let record = bytes.get(..body.checked_add(body_len)?)?;
    if record.get(HEADER..body)? != name.as_bytes()
        || checksum(record) != u64::from_le_bytes(record.get(SUM)?.try_into().ok()?)
    {
        return None;
    }
    Fields(record.get(body..)?).state()
}

/// The state of `name` as its record in `table` holds it, if whole.
pub fn read(table: &File, name: &str) -> Option<RunState> {
    let mut buf = [0u8; RECORD];
    let at = offset(name);
    // Most records are shorter than this: the rest is read only if needed.
    let mut n = table.read_at(&mut buf[..FIRST], at).ok()?;
    let end = HEADER + u16_at(&buf, 4)? + u16_at(&buf, 6)?;
    if n == FIRST && end > FIRST {
        n += table
            .read_at(buf.get_mut(FIRST..end)?, at + FIRST as u64)
            .ok()?;
    }
    decode(name, buf.get(..n)?)
}

/// Copies `state`, just saved as `run/<name>.json`, into its record; a
/// state that cannot be copied (too long, or the table cannot be written)
/// leaves no record of `name` behind, so readers go to the JSON.
pub fn copy(ws: &Workspace, name: &str, state: &RunState) {
    let Some(table) = ws.state_table() else {
        return;
    };
    let written =
        encode(name, state).is_some_and(|record| table.write_all_at(&record, offset(name)).is_ok());
    if !written {
        clear(table, name);
    }
}

/// Clears the record of `name`, if its slot holds one (another name's
/// record in a shared slot is left alone).
pub fn forget(ws: &Workspace, name: &str) {
    if let Some(table) = ws.state_table() {
        clear(table, name);
    }
}

/// Kept out of line, its buffer small: the supervisor saves often, and a
/// larger frame under every save would cost it a page of stack for life.
#[cold]
#[inline(never)]
fn clear(table: &File, name: &str) {
    // A name has at most 64 bytes; a longer one has no record.
    let mut head = [0u8; HEADER + 64];
    let len = HEADER + name.len();
    let at = offset(name);
    let Ok(n) = table.read_at(head.get_mut(..len).unwrap_or_default(), at) else {
        return;
    };
    let ours = n >= len
        && head[..MAGIC.len()] == MAGIC
        && u16_at(&head, 4) == Some(name.len())
        && head.get(HEADER..len) == Some(name.as_bytes());
    if ours {
        let _ = table.write_all_at(&[0; MAGIC.len()], at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with every field set, each to a value of its own.
    fn full() -> RunState {
        RunState {
            desired: Desired::Stopped,
            phase: Phase::Backoff,
            boot_id: "boot".into(),
            pid: Some(-42),
            pid_start: Some(u64::MAX),
            supervisor_pid: Some(41),
            supervisor_start: Some(7),
            started_at: Some("2026-11-29T12:00:00.000Z".into()),
            restarts: 3,
            quick_crashes: u32::MAX,
            last_exit: Some(ExitRecord {
                code: Some(-1),
                signal: Some("KILL".into()),
                at: "2026-11-29T12:00:01.000Z".into(),
                uptime_s: 1.5,
            }),
            next_start_at: Some("n".into()),
            failed_at: Some("f".into()),
            stopped_by: Some("user".into()),
            message: Some("ünïcode".into()),
            ready: Some(false),
            usage: Some(crate::proc::Usage {
                cpu_pct: 12.5,
                rss_bytes: 1 << 40,
            }),
            definition: serde_json::value::RawValue::from_string(r#"{"command":"x"}"#.into()).ok(),
            definition_hash: None,
            updated_at: Some("u".into()),
        }
    }

    /// Every field of the state, as the JSON file has it.
    fn as_json(mut state: RunState) -> serde_json::Value {
        state.definition = None;
        serde_json::to_value(state).unwrap()
    }

    #[test]
    fn a_record_reads_back_as_the_state_it_was_written_from() {
        for state in [full(), RunState::default()] {
            let record = encode("web", &state).unwrap();
            let back = decode("web", &record).expect("whole record");
            assert_eq!(as_json(back.clone()), as_json(state.clone()));
            assert_eq!(
                back.definition_hash,
                state.definition.as_ref().map(|d| definition_hash(d.get()))
            );
        }
        let record = encode("web", &full()).unwrap();
        let back = decode("web", &record).unwrap();
        let entry: crate::registry::Entry = serde_json::from_str(r#"{"command":"x"}"#).unwrap();
        let changed: crate::registry::Entry = serde_json::from_str(r#"{"command":"y"}"#).unwrap();
        let text = serde_json::to_string(&entry).unwrap();
        let recorded = RunState {
            definition_hash: Some(definition_hash(&text)),
            ..RunState::default()
        };
        assert_eq!(recorded.runs_definition(&entry), Some(true));
        assert_eq!(recorded.runs_definition(&changed), Some(false));
        assert!(back.definition_hash.is_some());
        // Trailing bytes of an older, longer record in the slot are ignored.
        let mut slot = record.clone();
        slot.extend_from_slice(&[0xAB; 100]);
        assert!(decode("web", &slot).is_some());
    }

    #[test]
    fn a_record_of_another_name_or_damaged_anywhere_is_not_read() {
        let record = encode("web", &full()).unwrap();
        assert!(decode("api", &record).is_none(), "another name's record");
        assert!(decode("we", &record).is_none());
        for i in 0..record.len() {
            for bit in [0x01, 0x20, 0x80] {
                let mut torn = record.clone();
                torn[i] ^= bit;
                assert!(
                    decode("web", &torn).is_none(),
                    "byte {i} ^ {bit:#x} was read"
                );
            }
        }
        for cut in 0..record.len() {
            assert!(
                decode("web", &record[..cut]).is_none(),
                "cut at {cut} was read"
            );
        }
        assert!(decode("web", &[0; RECORD]).is_none(), "a hole");
        // Half of a newer record over an older one of the same name.
        let mut older = full();
        older.restarts = 1;
        older.message = None;
        let older = encode("web", &older).unwrap();
        let half = record.len() / 2;
        let mut mixed = record[..half].to_vec();
        mixed.extend_from_slice(&older[half..]);
        assert!(decode("web", &mixed).is_none(), "a torn record was read");
    }

    #[test]
    fn a_body_that_does_not_parse_as_written_is_not_read_even_summed_right() {
        let record = encode("web", &full()).unwrap();
        let body = HEADER + 3;
        // A phase byte out of range, an option tag out of range, a byte too
        // many: each with its checksum and length made right.
        for (at, value, extra) in [(body + 1, 9, false), (body + 4 + 4, 7, false), (0, 0, true)] {
            let mut bad = record.clone();
            if extra {
                bad.push(0);
                let len = u16::try_from(bad.len() - body).unwrap();
                bad[6..8].copy_from_slice(&len.to_le_bytes());
            } else {
                bad[at] = value;
            }
            let sum = checksum(&bad);
            bad[SUM].copy_from_slice(&sum.to_le_bytes());
            assert!(decode("web", &bad).is_none(), "{at} {value} {extra}");
        }
    }

    #[test]
    fn a_state_too_long_for_a_record_gets_none() {
        let mut long = full();
        long.message = Some("x".repeat(RECORD));
        assert!(encode("web", &long).is_none());
        long.message = Some("x".repeat(100_000));
        assert!(encode("web", &long).is_none());
    }

    #[test]
    fn records_short_and_long_are_read_from_their_slot() {
        let file = tempfile::tempfile().unwrap();
        let mut long = full();
        long.message = Some("m".repeat(RECORD - FIRST));
        for (name, state) in [("short", RunState::default()), ("long", long)] {
            let record = encode(name, &state).expect("fits");
            assert_eq!(record.len() > FIRST, name == "long");
            file.write_all_at(&record, offset(name)).unwrap();
            let back = read(&file, name).expect("read back");
            assert_eq!(as_json(back), as_json(state));
        }
        assert!(read(&file, "absent").is_none());
    }

    #[test]
    fn slots_stay_inside_the_table() {
        for name in ["a", "web", "x".repeat(64).as_str()] {
            let at = offset(name);
            assert!(at.is_multiple_of(RECORD as u64) && at < SLOTS * RECORD as u64);
        }
    }
}
