"""The forum survey: which ways of using Slicer remotely the community asks about, and what it is
stuck on. Topics come from a Discourse forum's JSON API (``discourse``) or an archive file
(``archive``); ``classify`` sorts each into an approach with its evidence; ``report`` writes the
CSV and the HTML page; ``service`` ties them together for ``slicer-cloud survey``."""
