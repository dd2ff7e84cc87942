//! A pseudo-terminal for a student client's stdout, so that C stdio (and any other runtime that
//! looks at `isatty`) line-buffers as it would for a student typing at a terminal; optionally
//! its stdin too (`client_stdin = "terminal"`), for clients that refuse to run without one
//! (Java's `System.console()` is null unless stdin and stdout are terminals; Python's
//! `sys.stdin.isatty()`).
//!
//! Guarantees: output is raw (no `\n` → `\r\n` translation) and nothing typed is echoed back
//! into what the grader reads as the client's stdout (no `ECHO`, no `ECHONL`); the master side
//! is non-blocking and read and written through tokio; end of output is reported when every
//! holder of the slave side has closed it (Linux reports that as EIO on the master).
//! A terminal on stdin is in canonical mode (the program reads a typed line at a time, as from
//! a keyboard) with only end of file (`VEOF`, Ctrl-D) left as a special character: no signal
//! characters (`ISIG` off: a typed `\x03` is data, not SIGINT), no flow control (`IXON` off),
//! no erase, kill, literal-next or reprint characters; so [`EOF_BYTE`] typed at the start of a
//! line is the end of input ([`super::StudentProcess::close_stdin`]). A line longer than the
//! kernel's canonical buffer (4095 bytes) is cut there, as on a real terminal. The program
//! gets no controlling terminal: the pty is only its stdin and stdout (see the sandbox's
//! `setsid`).

use std::os::fd::OwnedFd;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::{Winsize, openpty};
use nix::sys::termios::{
    LocalFlags, SetArg, SpecialCharacterIndices, cfmakeraw, tcgetattr, tcsetattr,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The end-of-file character of a terminal stdin (Ctrl-D, `VEOF`).
pub const EOF_BYTE: u8 = 0x04;

/// The two ends of a fresh pseudo-terminal.
pub struct Pty {
    /// Read what the child writes (and, for a terminal stdin, write what it reads).
    pub master: AsyncFd<OwnedFd>,
    /// Given to the child as its stdout (and stdin).
    pub slave: OwnedFd,
}

/// Opens a pseudo-terminal, 120 columns by 40 rows: raw, or with `stdin` a line-reading
/// terminal without echo (see the module comment).
pub fn open(stdin: bool) -> std::io::Result<Pty> {
    let size = Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pair = openpty(&size, None).map_err(std::io::Error::from)?;
    let mut attrs = tcgetattr(&pair.slave).map_err(std::io::Error::from)?;
    cfmakeraw(&mut attrs);
    if stdin {
        // Lines, end of file, and nothing else special; still no echo and raw output.
        attrs.local_flags |= LocalFlags::ICANON;
        attrs.local_flags &= !(LocalFlags::ECHO
            | LocalFlags::ECHONL
            | LocalFlags::ECHOE
            | LocalFlags::ECHOK
            | LocalFlags::ECHOCTL
            | LocalFlags::ECHOKE
            | LocalFlags::ISIG
            | LocalFlags::IEXTEN);
        const DISABLED: u8 = 0; // _POSIX_VDISABLE on Linux
        for c in [
            SpecialCharacterIndices::VERASE,
            SpecialCharacterIndices::VKILL,
            SpecialCharacterIndices::VEOL,
            SpecialCharacterIndices::VEOL2,
            SpecialCharacterIndices::VWERASE,
            SpecialCharacterIndices::VREPRINT,
            SpecialCharacterIndices::VLNEXT,
            SpecialCharacterIndices::VINTR,
            SpecialCharacterIndices::VQUIT,
            SpecialCharacterIndices::VSUSP,
            SpecialCharacterIndices::VSTART,
            SpecialCharacterIndices::VSTOP,
        ] {
            attrs.control_chars[c as usize] = DISABLED;
        }
        attrs.control_chars[SpecialCharacterIndices::VEOF as usize] = EOF_BYTE;
    }
    tcsetattr(&pair.slave, SetArg::TCSANOW, &attrs).map_err(std::io::Error::from)?;
    let flags = fcntl(&pair.master, FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
    fcntl(
        &pair.master,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(std::io::Error::from)?;
    // SAFETY: an `OwnedFd` returns the same open descriptor from `as_raw_fd` for as long as it
    // lives, and the `AsyncFd` owns it from here on.
    let master = unsafe {
        AsyncFd::register_with_interest(pair.master, Interest::READABLE | Interest::WRITABLE)
    }
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(Pty {
        master,
        slave: pair.slave,
    })
}

/// Reads from the master until every slave holder closes; returns `Ok(0)` at that end.
pub async fn read(master: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        let mut guard = master.readable().await?;
        match guard.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(std::io::Error::from))
        {
            Ok(Ok(n)) => return Ok(n),
            // EIO: the slave side is closed everywhere; that is the end of output.
            Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => return Ok(0),
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
}

/// Writes all of `bytes` to the master (the program's terminal input), waiting while the
/// terminal's input queue is full (the program does not read).
pub async fn write_all(master: &AsyncFd<OwnedFd>, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let mut guard = master.writable().await?;
        match guard
            .try_io(|fd| nix::unistd::write(fd.get_ref(), bytes).map_err(std::io::Error::from))
        {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => bytes = &bytes[n..],
            // EIO: no program holds the terminal any more.
            Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the terminal is closed (the program ended)",
                ));
            }
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}
