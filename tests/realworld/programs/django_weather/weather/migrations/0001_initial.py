from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.CreateModel(
            name="City",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                    ("name", models.CharField(max_length=100)), ("lat", models.FloatField()), ("lon", models.FloatField())],
            options={"ordering": ["id"]},
        ),
        migrations.CreateModel(
            name="Forecast",
            fields=[("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                    ("time", models.CharField(max_length=20)), ("temperature", models.FloatField()),
                    ("city", models.ForeignKey(on_delete=models.deletion.CASCADE, related_name="forecasts",
                                               to="weather.city"))],
            options={"unique_together": {("city", "time")}},
        ),
    ]
