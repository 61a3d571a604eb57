//! What a long-lived helper keeps resident once it has started. The shim
//! (its container running) and the init (its command forked) call `shed`:
//! the heap's free pages go back to the kernel, and the binary's read-only
//! clean mappings and the stack below the caller's frame drop the pages start-up
//! touched. The binary's pages are clean pages of its file, shared with
//! every other helper and mapped again on their next use; the stack's
//! dropped part lies below every live frame. Touches no other state.

use std::io::BufRead;

/// How much of the stack below the caller's frame stays (the frames of the
/// calls `shed` makes live there).
const STACK_MARGIN: usize = 16 * 1024;

/// Gives back what start-up touched and the helper's steady state does not
/// need. Best effort: a mapping it cannot read or advise stays as it is.
#[inline(never)]
pub fn shed() {
    // SAFETY: malloc_trim only returns free memory of the allocator's
    // arenas to the kernel; no live allocation moves.
    unsafe { libc::malloc_trim(0) };
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    let Ok(maps) = std::fs::File::open("/proc/self/smaps") else {
        return;
    };
    let text = shed as *const () as usize;
    let mut regions: Vec<Mapping> = Vec::new();
    let mut binary: Option<String> = None;
    for line in std::io::BufReader::new(maps).lines().map_while(Result::ok) {
        if let Some(kib) = line.strip_prefix("Anonymous:") {
            if let Some(last) = regions.last_mut() {
                last.copied = kib.trim().trim_end_matches("kB").trim() != "0";
            }
            continue;
        }
        let Some(m) = Mapping::parse(&line) else {
            continue;
        };
        if m.start <= text && text < m.end {
            binary = Some(m.file_key.clone());
        }
        regions.push(m);
    }
    let page = 4096;
    for m in &regions {
        let range = if m.is_stack {
            // Only what lies below the live frames, by a margin, and only
            // when this frame is on that stack (the main thread's).
            if !(m.start <= sp && sp < m.end) {
                continue;
            }
            let top = sp.saturating_sub(STACK_MARGIN) & !(page - 1);
            (top > m.start).then_some((m.start, top))
        } else if !m.writable && !m.copied && binary.as_deref() == Some(m.file_key.as_str()) {
            Some((m.start, m.end))
        } else {
            None
        };
        if let Some((start, end)) = range {
            // SAFETY: the range is a whole mapping of the binary's file that
            // is not writable and holds no page of its own (so dropping its
            // pages loses nothing: the next access maps the file's again), or
            // the part of this single-threaded process's stack more than
            // STACK_MARGIN below the current frame, which holds no live
            // frame (signal handlers run only when the call has returned).
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

/// One line of /proc/self/maps, as far as `shed` needs it.
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    is_stack: bool,
    /// Device and inode: which file the mapping maps (empty when none).
    file_key: String,
    /// Whether any page is the process's own copy (smaps' `Anonymous`), as
    /// the pages start-up relocated before making them read-only: those
    /// must stay.
    copied: bool,
}

impl Mapping {
    fn parse(line: &str) -> Option<Mapping> {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        let _offset = fields.next()?;
        let dev = fields.next()?;
        let inode = fields.next()?;
        let path = fields.next().unwrap_or("");
        Some(Mapping {
            start: usize::from_str_radix(start, 16).ok()?,
            end: usize::from_str_radix(end, 16).ok()?,
            writable: perms.as_bytes().get(1) == Some(&b'w'),
            is_stack: path == "[stack]",
            file_key: if inode == "0" {
                String::new()
            } else {
                format!("{dev} {inode}")
            },
            copied: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_mapping_of_a_file_and_the_stack() {
        let m = Mapping::parse(
            "00200000-003ef000 r--p 00000000 08:01 1234   /usr/local/bin/berth-helper",
        )
        .expect("a mapping");
        assert_eq!((m.start, m.end), (0x200000, 0x3ef000));
        assert!(!m.writable && !m.is_stack);
        assert_eq!(m.file_key, "08:01 1234");
        let s = Mapping::parse("7ffc7e322000-7ffc7e343000 rw-p 00000000 00:00 0  [stack]")
            .expect("the stack");
        assert!(s.writable && s.is_stack && s.file_key.is_empty());
        assert!(Mapping::parse("garbage").is_none());
    }

    #[test]
    fn shedding_keeps_the_process_working() {
        let before: Vec<u64> = (0..1000).collect();
        shed();
        // Code, read-only data and the live stack still work afterwards.
        assert_eq!(before.iter().sum::<u64>(), 499_500);
        assert_eq!(format!("{:?}", Some("x")), "Some(\"x\")");
    }
}
