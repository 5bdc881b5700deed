//! Primary and rename: only the owner's factors.

use crate::login::tests::{NOW, harness};
use crate::selfservice::test_support::enrolled;
use herarx_proto::HerarxError;

#[test]
fn primary_and_rename_belong_to_the_owner() {
    let h = harness();
    let (svc, _) = enrolled(&h);
    h.enrol("alice");
    let ids: Vec<String> = svc
        .status(1000, NOW)
        .unwrap()
        .factors
        .iter()
        .map(|f| f.id.clone())
        .collect();
    let (first, second) = (ids[0].clone(), ids[1].clone());
    assert!(svc.status(1000, NOW).unwrap().factors[0].primary);

    let e = svc.set_primary(1001, &second, NOW).unwrap_err();
    assert!(matches!(e, HerarxError::NoSuchFactor(_)));
    svc.set_primary(1000, &second, NOW).unwrap();
    let st = svc.status(1000, NOW).unwrap();
    let primaries: Vec<(&str, bool)> = st
        .factors
        .iter()
        .map(|f| (f.id.as_str(), f.primary))
        .collect();
    assert_eq!(
        primaries,
        vec![(first.as_str(), false), (second.as_str(), true)]
    );

    for bad in ["", "  ", "a\nb"] {
        let e = svc.rename_factor(1000, &first, bad, NOW).unwrap_err();
        assert!(matches!(e, HerarxError::InvalidArgument(_)), "{bad:?}");
    }
    let e = svc.rename_factor(1001, &first, "mine", NOW).unwrap_err();
    assert!(matches!(e, HerarxError::NoSuchFactor(_)));
    let info = svc.rename_factor(1000, &second, "work phone", NOW).unwrap();
    assert_eq!((info.name.as_str(), info.primary), ("work phone", true));
    assert_eq!(svc.status(1000, NOW).unwrap().factors[1].name, "work phone");
    assert_eq!(svc.status(1000, NOW).unwrap().factors[0].name, "phone");
}
