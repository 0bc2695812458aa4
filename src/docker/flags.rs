//! A small pflag-style flag reader shared by the container and compose parsers.
//!
//! Docker's CLI parses flags with spf13/pflag, so this accepts the same spellings:
//! `--time=5`, `--time 5`, `-t 5`, `-t5`, `-t=5`, bundled switches like `-fv`, and
//! `--` to end the flags. Each parser declares its flags as a table of [`FlagSpec`];
//! anything not in the table is an unknown flag, never silently passed through.

use crate::docker::error::CommandError;

/// One flag a subcommand accepts.
pub(crate) struct FlagSpec<F> {
    pub flag: F,
    pub short: Option<char>,
    /// Long names without the leading `--`.
    pub long: &'static [&'static str],
    pub takes_value: bool,
    /// Compose's `-f` may be given several times; other flags may not,
    /// so an approver never has to guess which of two values wins.
    pub repeatable: bool,
    /// Docker knows this flag but the gateway refuses it, for this reason.
    pub refused: Option<&'static str>,
}

/// How far flags may appear among the positional arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Flags may follow positionals (`docker stop api -t 5`), as for docker's subcommands.
    Interspersed,
    /// The first positional ends the flags, as for `docker compose`'s global options.
    StopAtFirstPositional,
}

/// A flag as read from the command line.
#[derive(Debug)]
pub(crate) struct ParsedFlag<F> {
    pub flag: F,
    /// The spelling the user wrote (`-t`, `--timeout`), for error messages.
    pub spelled: String,
    /// The value; empty for a switch.
    pub text: String,
    /// Whether a switch is on (`--force=false` turns it off); true for a value flag.
    pub on: bool,
}

/// The flags and positionals of one (sub)command.
#[derive(Debug)]
pub(crate) struct ParsedArgs<F> {
    pub flags: Vec<ParsedFlag<F>>,
    /// With [`Mode::StopAtFirstPositional`], the first positional and everything after it.
    pub positionals: Vec<String>,
}

impl<F: Copy + PartialEq> FlagSpec<F> {
    pub(crate) const fn switch(
        flag: F,
        short: Option<char>,
        long: &'static [&'static str],
    ) -> Self {
        FlagSpec {
            flag,
            short,
            long,
            takes_value: false,
            repeatable: false,
            refused: None,
        }
    }

    pub(crate) const fn value(flag: F, short: Option<char>, long: &'static [&'static str]) -> Self {
        FlagSpec {
            takes_value: true,
            ..FlagSpec::switch(flag, short, long)
        }
    }

    pub(crate) const fn repeatable(self) -> Self {
        FlagSpec {
            repeatable: true,
            ..self
        }
    }

    pub(crate) const fn refused(self, reason: &'static str) -> Self {
        FlagSpec {
            refused: Some(reason),
            ..self
        }
    }
}

/// Reads `args` against `specs`. `subcommand` names the command in error messages.
pub(crate) fn read_flags<F: Copy + PartialEq>(
    args: &[String],
    specs: &[FlagSpec<F>],
    subcommand: &str,
    mode: Mode,
) -> Result<ParsedArgs<F>, CommandError> {
    let mut reader = Reader {
        args,
        next: 0,
        specs,
        subcommand,
        parsed: ParsedArgs {
            flags: Vec::new(),
            positionals: Vec::new(),
        },
    };
    while let Some(arg) = reader.take() {
        if arg == "--" {
            reader.rest_are_positional();
        } else if let Some(body) = arg.strip_prefix("--") {
            reader.long(body)?;
        } else if arg.len() > 1 && arg.starts_with('-') {
            reader.shorts(&arg[1..])?;
        } else if mode == Mode::StopAtFirstPositional {
            reader.next -= 1;
            reader.rest_are_positional();
        } else {
            reader.parsed.positionals.push(arg.clone());
        }
    }
    Ok(reader.parsed)
}

struct Reader<'a, F> {
    args: &'a [String],
    next: usize,
    specs: &'a [FlagSpec<F>],
    subcommand: &'a str,
    parsed: ParsedArgs<F>,
}

impl<'a, F: Copy + PartialEq> Reader<'a, F> {
    fn take(&mut self) -> Option<&'a String> {
        let arg = self.args.get(self.next)?;
        self.next += 1;
        Some(arg)
    }

    fn rest_are_positional(&mut self) {
        let rest = &self.args[self.next.min(self.args.len())..];
        self.parsed.positionals.extend(rest.iter().cloned());
        self.next = self.args.len();
    }

    fn long(&mut self, body: &str) -> Result<(), CommandError> {
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let spelled = format!("--{name}");
        let spec = self.find(&spelled, |spec| spec.long.contains(&name))?;
        if spec.takes_value {
            let text = match inline {
                Some(value) => value.to_string(),
                None => self.take_value(&spelled)?,
            };
            return self.push(spec, spelled, text, true);
        }
        let on = match inline {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(CommandError::BadValue {
                    flag: spelled,
                    value: other.to_string(),
                    expected: "true or false",
                });
            }
        };
        self.push(spec, spelled, String::new(), on)
    }

    fn shorts(&mut self, letters: &str) -> Result<(), CommandError> {
        for (offset, letter) in letters.char_indices() {
            let spelled = format!("-{letter}");
            let spec = self.find(&spelled, |spec| spec.short == Some(letter))?;
            if !spec.takes_value {
                self.push(spec, spelled, String::new(), true)?;
                continue;
            }
            let rest = &letters[offset + letter.len_utf8()..];
            let text = match rest.strip_prefix('=') {
                Some(value) => value.to_string(),
                None if !rest.is_empty() => rest.to_string(),
                None => self.take_value(&spelled)?,
            };
            return self.push(spec, spelled, text, true);
        }
        Ok(())
    }

    fn find(
        &self,
        spelled: &str,
        matches: impl Fn(&FlagSpec<F>) -> bool,
    ) -> Result<&'a FlagSpec<F>, CommandError> {
        let spec = self
            .specs
            .iter()
            .find(|spec| matches(spec))
            .ok_or_else(|| CommandError::UnknownFlag {
                flag: spelled.to_string(),
                subcommand: self.subcommand.to_string(),
            })?;
        match spec.refused {
            Some(reason) => Err(CommandError::UnsupportedFlag {
                flag: spelled.to_string(),
                subcommand: self.subcommand.to_string(),
                reason,
            }),
            None => Ok(spec),
        }
    }

    fn take_value(&mut self, spelled: &str) -> Result<String, CommandError> {
        self.take()
            .cloned()
            .ok_or_else(|| CommandError::MissingValue {
                flag: spelled.to_string(),
                subcommand: self.subcommand.to_string(),
            })
    }

    fn push(
        &mut self,
        spec: &FlagSpec<F>,
        spelled: String,
        text: String,
        on: bool,
    ) -> Result<(), CommandError> {
        let seen = self
            .parsed
            .flags
            .iter()
            .any(|parsed| parsed.flag == spec.flag);
        if seen && !spec.repeatable {
            return Err(CommandError::DuplicateFlag {
                flag: spelled,
                subcommand: self.subcommand.to_string(),
            });
        }
        self.parsed.flags.push(ParsedFlag {
            flag: spec.flag,
            spelled,
            text,
            on,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Flag {
        Time,
        Force,
        Volumes,
        File,
        Follow,
    }

    const SPECS: &[FlagSpec<Flag>] = &[
        FlagSpec::value(Flag::Time, Some('t'), &["time", "timeout"]),
        FlagSpec::switch(Flag::Force, Some('f'), &["force"]),
        FlagSpec::switch(Flag::Volumes, Some('v'), &["volumes"]),
        FlagSpec::value(Flag::File, None, &["file"]).repeatable(),
        FlagSpec::switch(Flag::Follow, None, &["follow"]).refused("it never ends"),
    ];

    fn read(args: &[&str], mode: Mode) -> Result<ParsedArgs<Flag>, CommandError> {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        read_flags(&args, SPECS, "test", mode)
    }

    fn time_values(args: &[&str]) -> Vec<String> {
        let parsed = read(args, Mode::Interspersed).expect("parses");
        parsed.flags.iter().map(|flag| flag.text.clone()).collect()
    }

    #[test]
    fn every_pflag_spelling_of_a_value_is_read() {
        for args in [
            &["-t", "5"][..],
            &["-t5"],
            &["-t=5"],
            &["--time", "5"],
            &["--time=5"],
            &["--timeout=5"],
        ] {
            assert_eq!(time_values(args), vec!["5"], "{args:?}");
        }
    }

    #[test]
    fn a_long_switch_can_be_turned_off_explicitly() {
        let parsed = read(&["--force=false"], Mode::Interspersed).expect("parses");
        assert!(!parsed.flags[0].on);
        let error = read(&["--force=yes"], Mode::Interspersed).unwrap_err();
        assert_eq!(error.code(), "bad_value");
    }

    #[test]
    fn flags_may_follow_positionals_unless_the_mode_stops_there() {
        let parsed = read(&["api", "-t", "5"], Mode::Interspersed).expect("parses");
        assert_eq!(parsed.positionals, vec!["api"]);
        assert_eq!(parsed.flags.len(), 1);
        let parsed = read(&["-f", "down", "-t", "5"], Mode::StopAtFirstPositional).expect("parses");
        assert_eq!(parsed.positionals, vec!["down", "-t", "5"]);
    }

    #[test]
    fn a_double_dash_ends_the_flags() {
        let parsed = read(&["--", "-t"], Mode::Interspersed).expect("parses");
        assert!(parsed.flags.is_empty());
        assert_eq!(parsed.positionals, vec!["-t"]);
    }

    #[test]
    fn unknown_refused_missing_and_repeated_flags_are_errors() {
        let cases = [
            (&["-x"][..], "unknown_flag"),
            (&["-fx"], "unknown_flag"),
            (&["--follow"], "unsupported"),
            (&["--time"], "bad_value"),
            (&["-t", "1", "--time=2"], "bad_value"),
        ];
        for (args, code) in cases {
            let error = read(args, Mode::Interspersed).unwrap_err();
            assert_eq!(error.code(), code, "{args:?}: {error}");
        }
    }
}
