// response_mode=form_post: send the authorization response to the service at once.
document.getElementById("form-post").submit();
