from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Digital inventory"

    def ready(self) -> None:
        # Any change to what the catalog shows starts a new cache generation (catalog.cache).
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from catalog.cache import catalog_changed
        from catalog.models import Material, PartFamily, PartRevision, SearchSynonym

        for model in (PartFamily, PartRevision, Material, SearchSynonym):
            post_save.connect(catalog_changed, sender=model, dispatch_uid=f"catalog-{model}-s")
            post_delete.connect(catalog_changed, sender=model, dispatch_uid=f"catalog-{model}-d")
        m2m_changed.connect(
            catalog_changed, sender=PartRevision.materials.through, dispatch_uid="catalog-m2m"
        )
