//! The app attributes on the methods of `#[app::logic]`: `#[app::init]`,
//! `#[app::view]`, `#[app::private]`, `#[app::xcall]`.

use syn::Attribute;
use syn::spanned::Spanned;

use super::is_attr;

/// The app attributes on one method of `#[app::logic]`, removed from it.
pub(crate) struct Marks {
    pub init: bool,
    pub view: Option<proc_macro2::Span>,
    pub private: Option<proc_macro2::Span>,
    pub xcall: Option<proc_macro2::Span>,
}

impl Marks {
    pub fn take(attrs: &mut Vec<Attribute>) -> Self {
        let mut marks = Marks {
            init: false,
            view: None,
            private: None,
            xcall: None,
        };
        attrs.retain(|a| {
            if is_attr(a, "init") {
                marks.init = true;
            } else if is_attr(a, "view") {
                marks.view = Some(a.span());
            } else if is_attr(a, "private") {
                marks.private = Some(a.span());
            } else if is_attr(a, "xcall") {
                marks.xcall = Some(a.span());
            } else {
                return true;
            }
            false
        });
        marks
    }

    /// Whether the method is an app method whatever its Rust visibility.
    pub fn exports(&self) -> bool {
        self.init || self.view.is_some() || self.private.is_some() || self.xcall.is_some()
    }

    /// Refuses marks that contradict the method (`receiver`: `Some(true)`
    /// for `&mut self`, `None` for none).
    pub fn check(&self, receiver: Option<bool>) -> syn::Result<()> {
        if let Some(span) = self.view {
            if self.init {
                return Err(syn::Error::new(
                    span,
                    "#[app::init] builds the state, so it cannot be an #[app::view]",
                ));
            }
            if receiver == Some(true) {
                return Err(syn::Error::new(
                    span,
                    "#[app::view] marks a read-only method, which takes &self; this one takes &mut self and may change state: take &self, or drop #[app::view]",
                ));
            }
        }
        if let (Some(span), true) = (self.xcall, self.init) {
            return Err(syn::Error::new(
                span,
                "#[app::init] runs once, when the context is created; other contexts cannot call it, so it cannot be #[app::xcall]",
            ));
        }
        if let (Some(span), true) = (self.private, self.init) {
            return Err(syn::Error::new(
                span,
                "#[app::init] already runs only once, when the context is created; it cannot be #[app::private]",
            ));
        }
        Ok(())
    }
}
