//! Emailing sign-in links over SMTP (`--smtp-url`, `--smtp-from`).

use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use taskgate_config::Smtp;

/// Sends `link` to `to`. The error names what failed, never the link.
pub async fn send_sign_in_link(smtp: &Smtp, to: &str, link: &SecretString) -> anyhow::Result<()> {
    let message = Message::builder()
        .from(smtp.from.parse().context("smtp-from is not a valid sender")?)
        .to(to.parse().context("not a valid recipient")?)
        .subject("Your taskgate sign-in link")
        .header(ContentType::TEXT_PLAIN)
        .body(format!(
            "Open this link to sign in to taskgate:\r\n\r\n{}\r\n\r\nIt works once, within {} minutes. If you did not ask to sign in, ignore this email.\r\n",
            link.expose_secret(),
            taskgate_core::signin::SIGN_IN_LINK_TTL.num_minutes()
        ))
        .context("cannot build the email")?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.url.expose_secret())
        .context("smtp-url is not a usable SMTP URL")?
        .timeout(Some(std::time::Duration::from_secs(20)))
        .build();
    transport
        .send(message)
        .await
        .context("the SMTP server did not accept the email")?;
    Ok(())
}
