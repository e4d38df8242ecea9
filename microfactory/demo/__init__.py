"""The demo factory (`manage.py seed_demo`): catalog, customers, sites, machines and one order.

It sits in the project package, above the three apps, because it fills all three and places
its demo order through order intake as a customer would; no app may write another's rows.
"""
