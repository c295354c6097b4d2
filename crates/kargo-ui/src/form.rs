//! A posted form's fields (`application/x-www-form-urlencoded`).

/// The fields of one form, in order.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Parses a form body.
    pub(crate) fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of field `name`, trimmed (`""` when absent).
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// Field `name`'s value, if not empty.
    pub(crate) fn optional(&self, name: &str) -> Option<&str> {
        Some(self.get(name)).filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::Form;

    #[test]
    fn fields_are_decoded_and_trimmed() {
        let form = Form::parse(b"name=+ci+&csrf=a%2Bb&empty=");
        assert_eq!(form.get("name"), "ci");
        assert_eq!(form.get("csrf"), "a+b");
        assert_eq!(form.optional("empty"), None);
        assert_eq!(form.get("absent"), "");
    }
}
