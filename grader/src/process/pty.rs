//! A pseudo-terminal for a student client's stdout, so that C stdio (and any other runtime that
//! looks at `isatty`) line-buffers as it would for a student typing at a terminal.
//!
//! Guarantees: the terminal is put in raw mode (no `\n` → `\r\n` translation, no echo), the master
//! side is non-blocking and read through tokio, and end of output is reported when every holder
//! of the slave side has closed it (Linux reports that as EIO on the master).

use std::os::fd::OwnedFd;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::{Winsize, openpty};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The two ends of a fresh raw-mode pseudo-terminal.
pub struct Pty {
    /// Read what the child writes.
    pub master: AsyncFd<OwnedFd>,
    /// Given to the child as its stdout.
    pub slave: OwnedFd,
}

/// Opens a raw pseudo-terminal, 120 columns by 40 rows.
pub fn open() -> std::io::Result<Pty> {
    let size = Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pair = openpty(&size, None).map_err(std::io::Error::from)?;
    let mut attrs = tcgetattr(&pair.slave).map_err(std::io::Error::from)?;
    cfmakeraw(&mut attrs);
    tcsetattr(&pair.slave, SetArg::TCSANOW, &attrs).map_err(std::io::Error::from)?;
    let flags = fcntl(&pair.master, FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
    fcntl(
        &pair.master,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(std::io::Error::from)?;
    // SAFETY: an `OwnedFd` returns the same open descriptor from `as_raw_fd` for as long as it
    // lives, and the `AsyncFd` owns it from here on.
    let master = unsafe { AsyncFd::register_with_interest(pair.master, Interest::READABLE) }
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
