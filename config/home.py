"""The site's root: the admin for someone signed in to it, its login page for
anyone else. Nothing else lives at `/` (customers reach the portal by signed link,
programs the API under /api/)."""

from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode


def home(request: HttpRequest) -> HttpResponseRedirect:
    index = reverse("admin:index")
    if request.user.is_active and request.user.is_staff:
        return HttpResponseRedirect(index)
    return HttpResponseRedirect(f"{reverse('admin:login')}?{urlencode({'next': index})}")
