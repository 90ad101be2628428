//! Hooks for checking constant time with valgrind's memcheck (the "ctgrind" technique).
//!
//! A test marks secret bytes *undefined* ([`poison`]); memcheck then reports every branch and
//! every memory address computed from them ("Conditional jump or move depends on uninitialised
//! value(s)", "Use of uninitialised value"). Where the code legitimately reveals something
//! computed from a secret (a public result, or an outcome the caller learns anyway, such as
//! "this key is out of range"), it calls [`declassify`] first, which marks the value *defined*
//! again; each call site says why the value is public. `tests/ctgrind.rs` runs the secret paths
//! under valgrind.
//!
//! The hooks are valgrind client requests (valgrind.h's magic instruction sequence, a no-op
//! when not under valgrind). They are compiled only with the test-only `ctgrind` feature on
//! x86-64; otherwise both functions are empty and vanish.

/// Marks the octets of `v` undefined for memcheck: every later branch or address that depends on
/// them is reported. For tests that check constant time.
#[inline(always)]
pub fn poison<T: ?Sized>(v: &T) {
    imp::request(
        imp::MAKE_MEM_UNDEFINED,
        v as *const T as *const u8,
        core::mem::size_of_val(v),
    );
}

/// Marks `v` defined for memcheck: the value is public from here on (see the module docs).
#[inline(always)]
pub fn declassify<T: ?Sized>(v: &T) {
    imp::request(
        imp::MAKE_MEM_DEFINED,
        v as *const T as *const u8,
        core::mem::size_of_val(v),
    );
}

/// [`declassify`] on a copy, returned (for `Copy` values such as `subtle::Choice`).
#[inline(always)]
pub fn public<T: Copy>(v: T) -> T {
    let x = v;
    declassify(&x);
    // Read the value back from memory, which the client request has just marked defined.
    // SAFETY: `x` is a valid, initialised, aligned local.
    unsafe { core::ptr::read_volatile(&x) }
}

#[cfg(all(feature = "ctgrind", target_arch = "x86_64"))]
mod imp {
    /// `VG_USERREQ_TOOL_BASE('M', 'C')` (memcheck.h).
    const MC_BASE: u64 = ((b'M' as u64) << 24) | ((b'C' as u64) << 16);
    pub const MAKE_MEM_UNDEFINED: u64 = MC_BASE + 1;
    pub const MAKE_MEM_DEFINED: u64 = MC_BASE + 2;

    /// `VALGRIND_DO_CLIENT_REQUEST_EXPR` for amd64 (valgrind.h): rax points at the request and
    /// its arguments, the rotations of rdi (128 bits in all: rdi is unchanged) followed by
    /// `xchg rbx, rbx` is the marker valgrind recognises; natively it does nothing.
    #[inline(always)]
    pub fn request(code: u64, addr: *const u8, len: usize) {
        let args: [u64; 6] = [code, addr as u64, len as u64, 0, 0, 0];
        // SAFETY: the sequence changes no register but rdx (the result, discarded) and reads
        // `args`; valgrind, when present, only changes its shadow state of [addr, addr + len).
        unsafe {
            core::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") 0u64 => _,
                inout("rdi") 0u64 => _,
                options(nostack),
            );
        }
    }
}

#[cfg(not(all(feature = "ctgrind", target_arch = "x86_64")))]
mod imp {
    pub const MAKE_MEM_UNDEFINED: u64 = 0;
    pub const MAKE_MEM_DEFINED: u64 = 0;

    #[inline(always)]
    pub fn request(_code: u64, _addr: *const u8, _len: usize) {}
}
