from django.db import models


class City(models.Model):
    name = models.CharField(max_length=100)
    lat = models.FloatField()
    lon = models.FloatField()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name


class Forecast(models.Model):
    city = models.ForeignKey(City, on_delete=models.CASCADE, related_name="forecasts")
    time = models.CharField(max_length=20)
    temperature = models.FloatField()

    class Meta:
        unique_together = [("city", "time")]
