//! `sealkm bench keyprov`: a load tool for KM-UU (placeholder until the load tool lands).

#[derive(clap::Subcommand, Debug)]
pub enum BenchCmd {
    /// keyprov requests/s and latency, cold and warm.
    Keyprov {
        #[arg(long)]
        url: String,
    },
}

pub async fn run(cmd: BenchCmd) -> Result<(), String> {
    Err(format!("{cmd:?}: the load tool is not built yet"))
}
