//! The application's PAM conversation behind `core::Conversation`: one message per `conv()`
//! call, which is what sshd's keyboard-interactive handles (one prompt per round).

use crate::core::{ConvError, Conversation};
use pam::constants::{
    PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO, PamMessageStyle,
};
use pam::conv::Conv;
use zeroize::Zeroizing;

pub struct PamConversation<'a> {
    /// `None` when the application registered no conversation: every prompt then fails.
    conv: Option<Conv<'a>>,
}

impl<'a> PamConversation<'a> {
    pub fn new(conv: Option<Conv<'a>>) -> Self {
        PamConversation { conv }
    }

    fn send(
        &self,
        style: PamMessageStyle,
        text: &str,
    ) -> Result<Option<Zeroizing<String>>, ConvError> {
        let conv = self
            .conv
            .as_ref()
            .ok_or_else(|| ConvError("the application has no conversation function".into()))?;
        // A NUL would make the message unsendable (PAM_BUF_ERR): the text is the daemon's,
        // drop the NULs rather than the prompt.
        let text = if text.contains('\0') {
            std::borrow::Cow::Owned(text.replace('\0', ""))
        } else {
            std::borrow::Cow::Borrowed(text)
        };
        let reply = conv
            .send(style, &text)
            .map_err(|code| ConvError(format!("conversation returned {code:?}")))?;
        // `SecretBytes` zeroizes its copy; ours is zeroized on drop too. A reply that is not
        // UTF-8 cannot be a code: pass it on lossily and let the daemon refuse it.
        Ok(reply
            .map(|bytes| Zeroizing::new(String::from_utf8_lossy(bytes.as_bytes()).into_owned())))
    }
}

impl Conversation for PamConversation<'_> {
    fn ask_hidden(&mut self, prompt: &str) -> Result<Zeroizing<String>, ConvError> {
        self.send(PAM_PROMPT_ECHO_OFF, prompt)?
            .ok_or_else(|| ConvError("the application returned no response".into()))
    }

    fn ask_visible(&mut self, prompt: &str) -> Result<Zeroizing<String>, ConvError> {
        self.send(PAM_PROMPT_ECHO_ON, prompt)?
            .ok_or_else(|| ConvError("the application returned no response".into()))
    }

    // Some applications fail informational messages (a null response array): the message is
    // lost, the login goes on.
    fn error(&mut self, text: &str) {
        let _ = self.send(PAM_ERROR_MSG, text);
    }

    fn info(&mut self, text: &str) {
        let _ = self.send(PAM_TEXT_INFO, text);
    }
}
