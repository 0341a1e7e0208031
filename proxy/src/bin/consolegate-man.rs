//! Writes the `consolegate(8)` manual page to stdout, generated from the daemon's command line
//! (`consolegate::cli::Cli`, rendered by clap_mangen) plus its FILES and SEE ALSO sections:
//! `consolegate-man > consolegate.8`. `packaging/build.sh` runs it; the page is never edited by
//! hand. `consolegate.conf(5)` is written by hand (`packaging/man/consolegate.conf.5`).

use std::io::{self, Write};

use clap::CommandFactory;
use consolegate::cli::Cli;

/// The sections clap does not know about, in roff.
const FILES_AND_SEE_ALSO: &str = r#".SH FILES
.TP
.I /etc/consolegate/consolegate.conf
The configuration; see \fBconsolegate.conf\fR(5).
.TP
.I /etc/consolegate/pki/
The proxy's certificates and keys: the wss certificate and the client certificate it presents
to hypervisors.
.TP
.I /etc/consolegate/tokens
The packaged token file (empty): one \fBTOKEN: TARGET\fR line per console.
.TP
.I /usr/lib/consolegate/drivers/
Security drivers, \fBlibconsolegate_\fR\fINAME\fR\fB.so\fR.
.TP
.I /usr/share/consolegate/web/
The console pages (vnc.html, spice.html, serial.html).
.TP
.I /usr/share/doc/consolegate/examples/
Example configurations and token files.
.SH EXIT STATUS
0 when the daemon stopped after SIGTERM or SIGINT, or when \fB\-\-check\-config\fR found the
configuration usable; 1 when the configuration, a driver, the token source, a certificate or a
listening address could not be used (the message says which and what to do).
.SH SEE ALSO
\fBconsolegate.conf\fR(5), \fBsystemctl\fR(1), \fBsystemd.socket\fR(5)
"#;

fn main() -> io::Result<()> {
    let man = clap_mangen::Man::new(Cli::command())
        .section("8")
        .manual("System Administration");
    let mut out = io::stdout().lock();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    out.write_all(FILES_AND_SEE_ALSO.as_bytes())?;
    man.render_version_section(&mut out)?;
    out.flush()
}
