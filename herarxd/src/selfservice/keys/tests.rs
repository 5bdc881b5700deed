use super::*;

#[test]
fn every_device_error_says_what_to_do() {
    let t = Duration::from_secs(20);
    assert_eq!(
        device_refusal(&DeviceError::NotPresent, t),
        HerarxError::Busy("No security key is plugged in: plug one in and try again.".into())
    );
    let HerarxError::Busy(m) = device_refusal(&DeviceError::Timeout, t) else {
        panic!()
    };
    assert!(m.contains("not touched within 20 seconds"), "{m}");
    assert!(matches!(
        device_refusal(&DeviceError::PinInvalid, t),
        HerarxError::WrongCode(ref m) if m.starts_with("Wrong PIN")
    ));
    assert_eq!(
        device_refusal(&DeviceError::PinRequired, t),
        HerarxError::InvalidArgument(PIN_REQUIRED.into())
    );
    assert!(matches!(
        device_refusal(&DeviceError::CredentialExcluded, t),
        HerarxError::InvalidArgument(ref m) if m.contains("registered already")
    ));
}

#[test]
fn the_user_handle_hides_the_name_and_fits() {
    let h = user_handle(&"a".repeat(300));
    assert_eq!(h.len(), 32);
    assert_ne!(user_handle("alice"), user_handle("bob"));
}
