//! `cors-edge purge`: client of the admin purge endpoint.

use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Args, Command, FromArgMatches};
use cors_edge_core::purge::{admin_body, Field};

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Admin API base URL, e.g. http://127.0.0.1:9901
    #[arg(long)]
    pub admin: String,
    /// Bearer token; defaults to $CORS_EDGE_ADMIN_TOKEN.
    #[arg(long, env = "CORS_EDGE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub selector: SelectorArgs,
    /// Mark matches stale (revalidate next time) instead of deleting them.
    #[arg(long)]
    pub soft: bool,
}

/// The selector flags: one per purge field of the core's list, and `--all`. At least one is
/// required; `--all` goes alone. Values are sent as typed: the admin API validates them.
#[derive(Debug, Default)]
pub struct SelectorArgs {
    pub fields: Vec<(Field, String)>,
    pub all: bool,
}

const ALL: &str = "all";

impl Args for SelectorArgs {
    fn augment_args(mut command: Command) -> Command {
        let names = Field::ALL.map(Field::name);
        for field in Field::ALL {
            command = command.arg(
                Arg::new(field.name())
                    .long(field.name())
                    .action(ArgAction::Set)
                    .help(field.help()),
            );
        }
        command
            .arg(
                Arg::new(ALL)
                    .long(ALL)
                    .action(ArgAction::SetTrue)
                    .help("Every entry")
                    .conflicts_with_all(names),
            )
            .group(
                ArgGroup::new("selector")
                    .required(true)
                    .multiple(true)
                    .args(names.into_iter().chain([ALL])),
            )
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

impl FromArgMatches for SelectorArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let fields = Field::ALL
            .into_iter()
            .filter_map(|field| {
                let value = matches.get_one::<String>(field.name())?;
                Some((field, value.clone()))
            })
            .collect();
        Ok(SelectorArgs {
            fields,
            all: matches.get_flag(ALL),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

pub fn body(args: &PurgeArgs) -> String {
    let fields = args
        .selector
        .fields
        .iter()
        .map(|(field, value)| (*field, value.as_str()));
    admin_body(fields, args.selector.all, args.soft)
}

async fn send(args: &PurgeArgs) -> Result<(u16, String), String> {
    crate::admin_client::send(crate::admin_client::AdminRequest {
        admin: &args.admin,
        method: http::Method::POST,
        path_and_query: "/purge",
        token: args.token.as_deref(),
        json: Some(body(args)),
    })
    .await
}

pub async fn run(args: PurgeArgs) -> i32 {
    match send(&args).await {
        Ok((200, body)) => {
            println!("{body}");
            0
        }
        Ok((status, body)) => {
            eprintln!("cors-edge purge: admin answered {status}: {body}");
            1
        }
        Err(e) => {
            eprintln!("cors-edge purge: {e}");
            1
        }
    }
}
