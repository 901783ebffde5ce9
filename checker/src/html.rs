pub fn render_html(_o: &crate::check::Outcome) -> String {
    String::new()
}
