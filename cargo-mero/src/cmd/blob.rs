//! `cargo mero blob`: uploads and downloads with a progress bar.

use crate::BlobCmd;

/// `cargo mero blob put|get`.
pub(crate) fn run(cmd: BlobCmd) -> anyhow::Result<()> {
    let bar = |hidden: bool, verb: &str| -> anyhow::Result<indicatif::ProgressBar> {
        if hidden {
            return Ok(indicatif::ProgressBar::hidden());
        }
        Ok(indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{verb:>12} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{eta}}"
            ))?
            .progress_chars("=> "),
        ))
    };
    let mib_s = |size: u64, secs: f64| size as f64 / (1024.0 * 1024.0) / secs.max(1e-9);
    match cmd {
        BlobCmd::Put { file, to } => {
            let (opts, json) = to.options()?;
            let pb = bar(json, "Uploading")?;
            let out = cargo_mero::blob::put(&opts, &file, &mut |sent, total| {
                pb.set_length(total);
                pb.set_position(sent);
            })?;
            pb.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                eprintln!(
                    "    Uploaded {} ({} bytes, {:.1} MiB/s) to context {}",
                    file.display(),
                    out.size,
                    mib_s(out.size, out.secs),
                    out.context
                );
                eprintln!(
                    "             store the id in state within the node's grace period ([blobs] gc_grace_secs)"
                );
                println!("{}", out.id);
            }
        }
        BlobCmd::Get { id, output, from } => {
            let (opts, json) = from.options()?;
            let pb = bar(json, "Downloading")?;
            let out = cargo_mero::blob::get(&opts, &id, output.as_deref(), &mut |got, total| {
                pb.set_length(total);
                pb.set_position(got);
            })?;
            pb.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string(&out)?);
            } else {
                let resumed = if out.resumed_from > 0 {
                    format!(", resumed at byte {}", out.resumed_from)
                } else {
                    String::new()
                };
                eprintln!(
                    "  Downloaded {} ({} bytes, {:.1} MiB/s{resumed}), checked against its id",
                    out.path.display(),
                    out.size,
                    mib_s(out.size - out.resumed_from, out.secs),
                );
            }
        }
    }
    Ok(())
}
