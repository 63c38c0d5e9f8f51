"""What people are stuck on: named clusters of recurring problems, found by phrases in the question.

The clusters are written by hand from what the forum's remote-use topics complain about (the hand
survey already saw VNC connection errors as frequent); a topic can fall into several. Each
cluster is a phrase pattern, so a count can always be traced back to the words that put a topic
in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    key: str
    title: str
    pattern: re.Pattern[str]


def _problem(key: str, title: str, pattern: str) -> Problem:
    return Problem(key, title, re.compile(pattern, re.I))


PROBLEMS: tuple[Problem, ...] = (
    _problem("remote_connection", "VNC / remote display connection errors",
             r"\b(?:\w*vnc\w*|rdp|remote desktop|x2go|nomachine|teamviewer|x11 forwarding|ssh -[xy])\b[^.\n]{0,100}\b(?:connect\w*|refus\w*|fail\w*|black|blank|crash\w*|disconnect\w*|time ?out|error|freez\w*|kill\w*)"
             r"|\b(?:black|blank|frozen|freez\w*|disconnect\w*)\b[^.\n]{0,60}\b(?:\w*vnc\w*|rdp|remote desktop|x2go|nomachine|teamviewer)\b"
             r"|\bconnection (?:refused|failed|closed|lost)\b"),
    _problem("opengl_gpu", "OpenGL without a GPU (drivers, Mesa, VirtualGL)",
             r"\bopen ?gl\b|\bglx\b|\bmesa\b|\bllvmpipe\b|\bswrast\b|\bfbconfig|\bqopengl\w*|\bglew\b|\bvirtual ?gl\b|\bvglrun\b|\bsoftware render\w*|\bgraphics (?:card|driver)s?\b|\bgpu\b"),
    _problem("no_display", "X display missing (xvfb, DISPLAY, Qt platform plugin)",
             r"cannot connect to x server|could not connect to (?:any )?(?:x )?display|can'?t open display|cannot open display|couldn't open display"
             r"|\$display\b|\bdisplay (?:variable|environment)\b|qt platform plugin|\bxcb\b|\bxvfb\w*|\bxdummy\b|\bdummy x|no protocol specified"),
    _problem("container_image", "Docker and Singularity images",
             r"\bdocker\w*|\bcontainer\w*|\bsingularity\b|\bapptainer\b|\bkubernetes\b"),
    _problem("kernel_start", "Jupyter kernel not starting or dying",
             r"\bkernel\b[^.\n]{0,60}\b(?:die[sd]?|dying|dead|not start\w*|fail\w*|time ?out|crash\w*|restart\w*|not (?:found|connect\w*))|\bkernel_info\b|\bkernelspec\b"),
    _problem("notebook_display", "Views and widgets in notebooks",
             r"\bipywidgets?\b|\bwidgets?\b[^.\n]{0,40}\b(?:not|fail|error|empty|blank)|\bipyevents\b|\bipycanvas\b|\bviewinteractivewidget\b|\bmodel not found\b|\bdisplay (?:in|inside) (?:the |a )?notebook\b"),
    _problem("extensions_packages", "Installing extensions and Python packages",
             r"\bextensions? manager\b|\binstall\w* (?:the |an? |my )?extensions?\b|\bpip_install\b|\bpip install\b|\badditional-module-paths\b|\bpython packages?\b"),
    _problem("performance", "Slow or laggy interaction",
             r"\bslow\w*|\blag\b|\blagg\w*|\blatency\b|\bperformance\b|\bframe ?rates?\b|\bfps\b|\bsluggish\b|\bresponsive\w*"),
    _problem("no_main_window", "Scripts without the main window",
             r"--no-main-window|\bno-main-window\b|\bmain window\b|\blayoutmanager\b|--python-script|--python-code"),
    _problem("cluster_jobs", "Cluster and HPC jobs",
             r"\bslurm\b|\bhpc\b|\bcluster\b|\bsbatch\b|\bqsub\b|\bsingularity\b|\bjob scheduler\b"),
    _problem("web_embedding", "Embedding or deploying a web viewer",
             r"\bembed\w*|\biframe\b|\bweb[- ]?app\w*|\btrame\w*|\bvtk\.?js\b|\bdeploy\w*|\bintegrat\w* (?:into|in|with) (?:a |an |our |my )?(?:web|existing)"),
    _problem("data_transfer", "Getting data in and out (upload, cloud storage, DICOMweb)",
             r"\bupload\w*|\bbuckets?\b|\bs3\b|\bdicomweb\b|\btransfer\w*|\bmount\w*|\bshared (?:folder|drive)\b"),
    _problem("network_access", "Ports, tokens and network access",
             r"\bports?\b|\bfirewall\b|\btoken\b|\bpassword\b|\bssl\b|\blocalhost\b|127\.0\.0\.1|0\.0\.0\.0|\btunnel\w*|\bproxy\b"),
    _problem("crash_start", "Slicer crashes or does not start",
             r"\bcrash\w*|does(?: not|n't) (?:start|launch|open)|fails? to (?:start|launch|open)|won'?t (?:start|launch)|\bsegfault|segmentation fault|core dumped"),
)


def problems_of(text: str) -> list[str]:
    """The keys of the problem clusters a topic's question falls into."""
    return [problem.key for problem in PROBLEMS if problem.pattern.search(text)]


PROBLEM_TITLES = {problem.key: problem.title for problem in PROBLEMS}
