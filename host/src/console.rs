//! The operator's lines on stderr, each written whole.
//!
//! `eprintln!` writes a line in pieces, one `write` per literal and argument
//! (six for `payhost: error: cannot load plugin <path>: <reason>`), because
//! stderr is unbuffered. A reader of the log then sees half a line, and
//! workers sharing one pipe or file interleave mid-line. [`say!`](crate::say)
//! formats the line first and writes it with one call; a line under
//! `PIPE_BUF` (4 KiB) reaches a pipe whole.
//!
//! A failed write is dropped: a closed stderr must not stop a worker
//! (`eprintln!` panics on it).

use std::fmt;
use std::io::{self, Write};

/// Writes `args` and a newline to stderr in one call. Use [`say!`](crate::say).
pub fn line(args: fmt::Arguments<'_>) {
    write_line(&mut io::stderr().lock(), args);
}

/// Writes `text` (several lines, say) to stderr in one call.
pub fn text(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

fn write_line(out: &mut impl Write, args: fmt::Arguments<'_>) {
    let mut line = fmt::format(args);
    line.push('\n');
    let _ = out.write_all(line.as_bytes());
}

/// `eprintln!`, but the line is written to stderr with one call (see
/// [`console`](crate::console)).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::line(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each `write` call it gets.
    #[derive(Default)]
    struct Calls(Vec<Vec<u8>>);

    impl Write for Calls {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_of_several_arguments_is_one_write_ending_in_a_newline() {
        let mut out = Calls::default();
        let (path, reason) = ("/p/stripe.wasm", "not WebAssembly");
        write_line(
            &mut out,
            format_args!(
                "payhost: plugin upgrade refused: {path}: {reason}; keeps running {}",
                7
            ),
        );
        assert_eq!(
            out.0,
            [b"payhost: plugin upgrade refused: /p/stripe.wasm: not WebAssembly; keeps running 7\n"
                .to_vec()]
        );
    }

    /// What `eprintln!` does with the same line, which is why this module
    /// exists.
    #[test]
    fn write_fmt_alone_writes_in_pieces() {
        let mut out = Calls::default();
        let path = "/p/stripe.wasm";
        writeln!(out, "payhost: plugin upgrade refused: {path}: x").unwrap();
        assert!(out.0.len() > 1, "{:?}", out.0);
    }

    #[test]
    fn a_failed_write_is_dropped_not_a_panic() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        write_line(&mut Closed, format_args!("payhost: {}", "gone"));
    }
}
