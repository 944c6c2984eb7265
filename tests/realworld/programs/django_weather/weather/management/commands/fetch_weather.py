"""A Django management command, run by cron: fetch and store the forecast of every city.

Modelled on Miikka-K/saaennusteen-visualisointi-Django-Chart.js
(weather/management/commands/fetch_weather.py): ``for city in City.objects.all()``, write
"Fetching <city>…" and call ``fetch_and_store_forecast(city)``, which asks Open-Meteo for the
city's coordinates and stores the hourly temperatures with the ORM; then write "Done.". Ours
keeps that shape on SQLite (``update_or_create`` per hour); the API's address comes from
REALWORLD_API.
Shape: a Django management command over a queryset; ORM writes in the per-item function.
"""

from django.core.management.base import BaseCommand

from weather.models import City
from weather.services import fetch_and_store_forecast


class Command(BaseCommand):
    help = "Fetches and stores forecast data for all cities"

    def handle(self, *args, **options):
        for city in City.objects.all():
            self.stdout.write(f"Fetching {city}…")
            fetch_and_store_forecast(city)
        self.stdout.write(self.style.SUCCESS("Done."))
