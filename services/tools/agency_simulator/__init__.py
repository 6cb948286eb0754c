"""Agency simulator: answers notices, property queries and watch lists the way a real-estate
registry, a traffic-police unit and banks would. For the demo and tests only: it is
not an agency integration and is clearly named so.
"""
