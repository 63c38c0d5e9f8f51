"""Sorting forum topics into the ways people use Slicer remotely, with the evidence for each.

The method is a set of weighted, named rules (regular expressions over the text and the links of a
topic), so every decision can be read back as the phrases that made it:

1. Look-alike phrases are set aside first ("ITK remote module", "PLUS server", "point cloud",
   "DICOM server", "project week meeting"...): they share words with remote use but are not about it,
   and each one found is listed in the evidence as ignored.
2. Each rule belongs to one approach and has a weight. A rule counts once per part of the topic:
   in the title (x1.5), in the question (x1) and in the answers (x0.35 per answer, at most 3):
   the asker's words say what the topic is about; answers often only suggest alternatives.
3. The approach with the highest score wins if it reaches ``threshold``; otherwise the topic is
   ``not_remote``. The confidence grows with the winning score and shrinks when a second approach
   is close.

Rules were written from the Slicer forum's vocabulary and tuned on the "tune" half of a labelled
development set; the "heldout" half measures them (tests/survey/devset.csv, docs/survey.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from slicer_cloud.survey.topics import Topic

APPROACHES = ("remote_desktop", "headless_compute_node", "jupyter_kernel", "pure_web")
NOT_REMOTE = "not_remote"
LABELS = (*APPROACHES, NOT_REMOTE)

TITLE_WEIGHT = 2.0
QUESTION_WEIGHT = 1.0
ANSWER_WEIGHT = 0.35
MAX_ANSWERS_COUNTED = 3
# The asker's own words (title and question) must point to the approach: a topic where only the
# answers suggest VNC or Docker is about something else.
ASKER_MINIMUM = 1.0
# Rules whose words have many everyday meanings on the forum ("server", "cloud", "notebook", "browser",
# "JavaScript", a display error...). They add to an approach's score but do not, on their own, show
# that the asker's problem is about using Slicer elsewhere: see ``_pointed``.
GENERIC_RULES = frozenset({
    "GUI of a remote machine", "remote session",
    "server processing", "X server missing", "batch without GUI", "command-line processing", "REST control of Slicer",
    "notebook",
    "web application", "web browser", "web viewer project",
})
# Rules that match again the words of another rule ("Jupyter notebook" is Jupyter, notebook and Slicer
# in a notebook): they never count as one more phrase of the asker's.
ECHO_RULES = frozenset({"notebook", "Slicer in a notebook", "web browser"})


@dataclass(frozen=True)
class Rule:
    name: str
    approach: str
    pattern: re.Pattern[str]
    weight: float
    keys: tuple[str, ...]  # lower-case words one of which any match contains: a cheap test first

    def search(self, lowered: str, text: str) -> re.Match[str] | None:
        if not any(key in lowered for key in self.keys):
            return None
        return self.pattern.search(text)


def _rule(approach: str, name: str, weight: float, keys: str, pattern: str) -> Rule:
    return Rule(name, approach, re.compile(pattern, re.I), weight, tuple(keys.split(",")))


# Phrases that look like remote use and are not: removed before the rules read the text.
LOOKALIKES: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (name, re.compile(pattern, re.I), tuple(keys.split(",")))
    for name, keys, pattern in (
        ("ITK/Slicer remote module", "remote", r"\bremote[- ]?modules?\b|\bitk remote\b|\bremote (?:git )?repositor\w+"),
        ("PLUS remote / PLUS server", "plus,remote", r"\bplus ?remote\b|\bplus ?server\b|\bplusserver\b|\bigtl ?remote\b|\bopenigtlink ?remote\b"),
        ("OpenIGTLink server/client", "server,client,bridge", r"\b(?:openigtlink|igtl|igt|opc ?ua|ros)[- ]?(?:server|client|bridge)\b|\bserver socket\b"),
        ("DICOM/PACS server", "server,node,store", r"\b(?:dicom|pacs|orthanc|dicomweb|dcm4chee|pacs/dicom)[- ]?(?:server|node|store|datastore)s?\b|\bsend to dicom server\b"),
        ("AI annotation server", "server", r"\b(?:monai ?label|monailabel|aiaa|annotation|label|nninteractive\w*|inference|segmentation) ?servers?\b"),
        ("extension/download server", "server,site,machine", r"\b(?:extensions?|download|package|packages|license|build|factory|dashboard|git|cdash|girder) ?(?:server|site|machines?)\b"),
        ("remote debugging", "debug", r"\bremote(?:ly)? debug\w*|\bdebug(?:ging)? server\b|\bremote debugger\b"),
        ("point cloud", "cloud", r"\bpoint[- ]?clouds?\b|\bdose cloud\b|\bcloud of points\b"),
        ("notebook computer", "notebook", r"\b(?:my|a|the) notebook (?:computer|pc|laptop)\b|\bgaming notebook\b"),
        ("project week / meeting notice", "meeting,project week,hangout", r"\bproject week\b[^.\n]{0,80}\b(?:meeting|prep|preparation)\b|\bpreparation meeting\b|\bweekly (?:meeting|hangout)\b"),
        ("web page / website", "web", r"\bweb ?(?:page|site)s?\b|\bwebsite\b|\bweb links?\b|\bweblinks?\b"),
        ("cloud data store", "health,storage,bucket", r"\b(?:aws )?health ?(?:imaging|lake)\b|\bgoogle (?:cloud )?healthcare(?: api)?\b|\bcloud storage\b|\b(?:s3|gcs) buckets?\b|\bbuckets?\b"),
        ("building Slicer in Docker", "build,dockcross", r"\bdocker ?build\w*|\bbuild(?:ing)? environments?\b|\bdockcross\b|\bbuildenv\S*"),
        # pip's output lists packages (jupyter-packaging, ipywidgets, docker...) a topic is not about.
        ("package installer output", "requirement,collecting,site-packages,downloading,using cached,installed,warning",
         r"(?m)^[ \t]*(?:requirement already satisfied|collecting|downloading|using cached|installing collected packages|successfully installed)\b[^\n]*"
         r"|\S*site-packages\S*|\bwarning: the scripts? \S+(?: \S+)*? (?:is|are) installed in [^\n]*"),
        ("extensions catalog", "webapp,extension", r"\bslicer-extensions-webapp\b|\bextensions?[- ](?:web ?app|catalog(?:ue)?|manager)\b"),
        ("Slicer's own browsers", "browser", r"\b(?:sequence|dicom|subject hierarchy|module|data|file|extensions?|slicer) browser\b"),
    )
)

# Titles of notices (meetings, maintenance, events): their boilerplate names technologies without
# anyone asking about them, so their scores count for less.
NOTICE_TITLE = re.compile(
    r"project week|\bpw ?\d+\b|\bprep(?:aration)? meetings?\b|\bweekly (?:meeting|hangout)\b|\bhangout\b|\bmaintenance\b"
    r"|\bdowntime\b|\bhackathon\b|\bcourse\b|\bworkshop\b|\bmeeting\b|\bwebinars?\b"
    r"|\bjob\b|\bhiring\b|\bvacanc\w+|\bpostdoc\w*|\bposition\b|\bopportunit\w+",
    re.I,
)
NOTICE_FACTOR = 0.3

RULES: tuple[Rule, ...] = (
    # --- remote desktop: the full GUI on another machine, pixels sent to the user ---------------
    _rule("remote_desktop", "VNC", 3.0, "vnc", r"\b(?:no|tiger|turbo|tight|real|x11|x0)?vnc(?:server|viewer)?\b"),
    _rule("remote_desktop", "remote desktop", 3.0, "remote,rdp,mstsc,terminal serv", r"\bremote[- ]desktops?\b|\brdp\b|\bmstsc\b|\bterminal services\b"),
    _rule("remote_desktop", "remote desktop product", 3.0, "x2go,nomachine,teamviewer,anydesk,citrix,appstream,app stream,dcv,horizon,parsec,workspaces,chrome remote",
          r"\bx2go\b|\bnomachine\b|\bteamviewer\b|\banydesk\b|\bcitrix\b|\bapp ?stream\b|\bnice ?dcv\b|\bhorizon view\b|\bparsec\b|\bworkspaces\b(?=[^.\n]{0,40}\b(?:aws|amazon)\b)|\baws workspaces?\b|\bamazon workspaces?\b|\bchrome remote\b"),
    _rule("remote_desktop", "VirtualGL", 3.0, "virtual,vgl", r"\bvirtual ?gl\b|\bvglrun\b|\bvglconnect\b"),
    _rule("remote_desktop", "X11 forwarding", 3.0, "forward,ssh,xquartz,mobaxterm,xming,vcxsrv,remote x,x11,remote display",
          r"\bx11[- ]forward\w*|\bx[- ]forward\w*|\bssh -[xy]\b|\bssh\b[^.\n]{0,30}\B-[xy] option\b|\bssh -[a-z]*[xy][a-z]*\b|\bxquartz\b|\bmobaxterm\b|\bxming\b|\bvcxsrv\b|\bremote x\b|\bx11 (?:session|display)\b|\bremote display\b"),
    _rule("remote_desktop", "remote session", 2.0, "remote", r"\bremote (?:session|login|access|connection)\b|\bremotely (?:access|connect|log|view)\w*"),
    _rule("remote_desktop", "virtual desktop / cloud workstation", 2.0, "virtual,cloud,browser",
          r"\bvirtual (?:desktop|workstation)s?\b|\bcloud (?:desktop|workstation)s?\b|\b(?:desktop|gui) (?:in|via|through|from) (?:a |the )?(?:web )?browser\b"),
    _rule("remote_desktop", "GUI of a remote machine", 1.5, "gui,graphical,display,screen,render,thin client",
          r"\b(?:gui|graphical (?:interface|desktop)|display|screen)\b[^.\n]{0,60}\b(?:remote|server|cloud|vm|virtual machine|ec2|instance)\b"),
    _rule("remote_desktop", "rendering server / thin client", 1.5, "render,thin client", r"\brender(?:ing)? servers?\b|\bthin clients?\b"),
    _rule("remote_desktop", "remote desktop recipe link", 2.0, "docker,demand,idc", r"\bslicer ?dockers?\b|\bdocker ?slicer\b|\bslicer ?on ?demand\b|\bidc desktops?\b"),
    # --- headless compute node: no display, processing on a server, cluster or container ----------
    _rule("headless_compute_node", "virtual X server", 3.0, "xvfb,xdummy,dummy,virtual,fake",
          r"\bxvfb(?:-run)?\b|\bxdummy\b|\bdummy x(?: server|11)?\b|\bvirtual (?:x|frame ?buffer|display)\b|\bfake (?:x|display)\b"),
    _rule("headless_compute_node", "headless", 2.0, "headless,display,without", r"\bheadless\b|\bdisplay-?less\b|\bwithout (?:a |any )?(?:display|monitor|screen|x server)\b"),
    _rule("headless_compute_node", "cluster / HPC", 3.0, "hpc,slurm,sbatch,qsub,pbs,sge,supercomput,compute,cluster,singularity,apptainer,easybuild",
          r"\bhpc\b|\bslurm\b|\bsbatch\b|\bqsub\b|\bpbs\b|\bsge\b|\bsupercomputer\w*|\bcompute (?:cluster|node)s?\b|\bcluster(?:s)? (?:node|job|computing)s?\b|\bon (?:a|the|our) cluster\b|\bsingularity\b|\bapptainer\b|\beasybuild\b"),
    _rule("headless_compute_node", "container", 1.5, "docker,container,kubernetes,podman", r"\bdocker\w*|\bcontaineri[sz]ed\b|\bcontainers?\b|\bkubernetes\b|\bpodman\b"),
    _rule("headless_compute_node", "continuous integration", 1.5, "ci,github action,gitlab,continuous,gha",
          r"\bci[/ -]?(?:pipeline|cd|server|runner|job)s?\b|\bgithub actions?\b|\bgitlab[- ]ci\b|\bcircleci\b|\bcontinuous integration\b|\bgha workflow\b"),
    _rule("headless_compute_node", "server processing", 1.5, "server,workstation,vm,virtual machine,instance,remote,apache,flask,fastapi",
          r"\b(?:on|to|in) (?:a|the|our|my) (?:linux |ubuntu |web |shared |headless |powerful |gpu |compute )*(?:server|workstation|vm|virtual machine|instance)\b|\bapache\w*\b|\bflask\b|\bfastapi\b"),
    _rule("headless_compute_node", "remote machine", 1.5, "remote", r"\bremote (?:server|machine|computer|host|node)s?\b"),
    _rule("headless_compute_node", "cloud", 1.5, "aws,ec2,amazon,azure,gcp,google cloud,cloud,sagemaker", r"\b(?:aws|ec2|amazon web services|azure|gcp|google cloud|cloud (?:computing|instance|server|vm|provider|platform)|sagemaker)\b"),
    _rule("headless_compute_node", "X server missing", 1.0, "connect,display,protocol,platform plugin",
          r"cannot connect to x server|could not connect to (?:any )?(?:x )?display|can't open display|couldn't open display|cannot open display|no protocol specified|qt platform plugin|\$display\b|\bdisplay (?:variable|environment)\b"),
    _rule("headless_compute_node", "batch without GUI", 0.5, "main-window,without", r"--no-main-window|\bno-main-window\b|\bwithout (?:the |a )?(?:gui|main window)\b"),
    _rule("headless_compute_node", "command-line processing", 0.3, "--python,batch,pythonslicer", r"--python-script|--python-code|\bbatch (?:mode|process\w*)\b|\bpythonslicer\b"),
    _rule("headless_compute_node", "REST control of Slicer", 1.0, "server,exec,rest api,slicerio", r"\bweb ?server module\b|\bslicer/exec\b|\brest api\b|\bslicerio\b"),
    # --- Jupyter kernel: Slicer driven from notebooks, locally, on a hub or on Binder -------------
    _rule("jupyter_kernel", "Jupyter", 2.5, "jupyter,ipykernel,ipython", r"\bjupyter\w*|\bipykernel\b|\bipython kernel\b"),
    _rule("jupyter_kernel", "Slicer kernel / SlicerJupyter", 3.0, "jupyter,kernel,slicernb,notebook", r"\bslicer ?jupyter\b|\bslicer kernel\b|\bslicernb\b|\bslicernotebooks?\b|\bslicer notebooks?\b"),
    _rule("jupyter_kernel", "Binder / Voila", 3.0, "binder,voila,appmode", r"\bmy ?binder\b|\bbinder\b|\bvoila\b|\bappmode\b"),
    _rule("jupyter_kernel", "Colab", 1.5, "colab", r"\bgoogle colab\w*|\bcolab\b"),
    _rule("jupyter_kernel", "notebook", 1.0, "notebook", r"\bnotebooks?\b"),
    _rule("jupyter_kernel", "Slicer in a notebook", 1.5, "jupyter,notebook",
          r"\bslicer\b[^.\n]{0,50}\b(?:jupyter\w*|notebooks?)\b|\b(?:jupyter\w*|notebooks?)\b[^.\n]{0,50}\bslicer\b"),
    _rule("jupyter_kernel", "notebook widgets", 1.0, "ipywidget,ipyevents,ipycanvas,viewinteractivewidget,kernel", r"\bipywidgets?\b|\bipyevents\b|\bipycanvas\b|\bviewinteractivewidget\b|\bkernel_info\b|\bkernel (?:died|dies|dying|restart\w*)\b"),
    # --- pure web: Slicer's functions in a web page ------------------------------------------------
    _rule("pure_web", "trame", 3.0, "trame", r"\btrame\w*|\bslicer ?trame\b"),
    _rule("pure_web", "vtk.js / WebAssembly / WebGL", 2.5, "vtk,assembly,wasm,webgl,emscripten,glance,three.js,niivue", r"\bvtk\.?js\b|\bvtkjs\b|\bweb ?assembly\b|\bwasm\b|\bwebgl\b|\bemscripten\b|\bparaview glance\b|\bthree\.js\b|\bniivue\b"),
    # "Web application", "web interface", "web-based" also name the forum's own tools, dashboards and
    # other products: generic. Next to Slicer, a viewer, rendering or images they are specific.
    _rule("pure_web", "web application", 2.5, "web,browser,slicer",
          r"\bweb[- ]?(?:app|apps|application|applications|viewer|viewers|version|interface|ui|client|frontend|front-end|platform|service|portal)\b|\bweb[- ]based\b|\bbrowser[- ]based\b|\bslicer (?:in|on) the web\b|\bto the web\b"),
    _rule("pure_web", "Slicer's views in a web app", 1.0, "web,browser,footprint,html",
          r"\bzero[- ]?footprint\b|\bhtml-?5 viewers?\b|\b(?:slicer|viewer|render\w*|3d|volumes?|segment\w*|mrml|dicom|images?|scenes?)\b[^.\n]{0,60}\b(?:web[- ]?(?:app|apps|application|applications|viewer|viewers|interface|client|frontend|front-end|platform|portal)|web[- ]based|browser[- ]based|web browsers?)\b"
          r"|\b(?:web[- ]?(?:app|apps|application|applications|viewer|viewers|interface|client|frontend|front-end|platform|portal)|web[- ]based|browser[- ]based|web browsers?)\b[^.\n]{0,60}\b(?:slicer|viewer|render\w*|3d|volumes?|segment\w*|mrml|dicom|images?|scenes?)\b"),
    # A browser is named in many other contexts ("open this link in the browser"): it counts once, and
    # little on its own.
    _rule("pure_web", "web browser", 1.5, "browser", r"\bin (?:a|the|any|your|my) (?:web )?browsers?\b|\bweb ?browsers?\b|\bbrowsers?\b"),
    _rule("pure_web", "web viewer project", 1.0, "ohif,cornerstone,kheops,papaya,footprint,javascript,vue", r"\bohif\b|\bcornerstone\w*|\bkheops\b|\bpapaya\b|\bzero ?footprint\b|\bjavascript\b|\bvue\.?js\b"),
)

# Links that speak for one approach (host and path, lower case, matched as a substring).
LINK_RULES: tuple[tuple[str, str, float], ...] = (
    ("virtualgl.org", "remote_desktop", 2.0),
    ("turbovnc.org", "remote_desktop", 2.0),
    ("novnc", "remote_desktop", 2.0),
    ("x2go", "remote_desktop", 2.0),
    ("nomachine.com", "remote_desktop", 2.0),
    ("github.com/pieper/slicerdockers", "remote_desktop", 1.5),
    ("mybinder.org", "jupyter_kernel", 2.0),
    ("github.com/slicer/slicerjupyter", "jupyter_kernel", 2.0),
    ("github.com/slicer/slicernotebooks", "jupyter_kernel", 2.0),
    ("kitware.github.io/vtk-js", "pure_web", 2.0),
    ("github.com/kitware/vtk-js", "pure_web", 2.0),
    ("kitware.github.io/trame", "pure_web", 2.0),
    ("github.com/kitware/trame", "pure_web", 2.0),
    ("ohif.org", "pure_web", 1.0),
    ("hub.docker.com/r/slicer", "headless_compute_node", 1.5),
    ("github.com/slicer/slicerdocker", "headless_compute_node", 1.5),
)


@dataclass
class Evidence:
    """One reason for a decision: which rule, where in the topic, and the words or link that matched."""

    approach: str
    rule: str
    where: str  # title, question, answers, link
    matched: str
    points: float

    def __str__(self) -> str:
        return f"{self.where}: '{self.matched}' ({self.rule}, {self.approach} +{self.points:.2f})"


@dataclass
class Classification:
    topic_id: int
    approach: str
    confidence: float
    scores: dict[str, float]
    evidence: list[Evidence] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # look-alike phrases set aside

    @property
    def is_remote(self) -> bool:
        return self.approach != NOT_REMOTE

    @property
    def candidate(self) -> bool:
        """Any remote-use signal at all: the survey's first net, like the hand survey's 170."""
        return max(self.scores.values(), default=0.0) > 0

    def explain(self, limit: int = 8) -> str:
        """The deciding evidence as one line: the winning approach's strongest reasons first."""
        target = self.approach if self.is_remote else max(self.scores, key=self.scores.get, default=None)
        chosen = sorted((e for e in self.evidence if e.approach == target), key=lambda e: -e.points)[:limit]
        parts = [str(e) for e in chosen]
        if self.ignored:
            parts.append("ignored look-alikes: " + ", ".join(f"'{phrase}'" for phrase in self.ignored[:4]))
        if not parts:
            return "no remote-use phrase or link"
        return "; ".join(parts)


class Classifier:
    """The rule-based classifier. ``threshold``: the score an approach needs to be called remote."""

    def __init__(self, threshold: float = 3.2, rules: tuple[Rule, ...] = RULES):
        self.threshold = threshold
        self.rules = rules

    def classify(self, topic: Topic) -> Classification:
        ignored: list[str] = []
        title = _neutralise(topic.title, ignored)
        # The asker's follow-ups ("I connect through Remote Desktop") are the asker's words too.
        asker = topic.question.username if topic.question else None
        own = [post.text for post in topic.answers if asker and post.username == asker]
        question = _neutralise("\n".join([topic.question.text, *own]), ignored) if topic.question else ""
        answers = [_neutralise(post.text, ignored) for post in topic.answers if not (asker and post.username == asker)]
        scores = {approach: 0.0 for approach in APPROACHES}
        evidence: list[Evidence] = []
        parts = [
            ("title", [(title.lower(), title)], TITLE_WEIGHT, 1),
            ("question", [(question.lower(), question)], QUESTION_WEIGHT, 1),
            ("answers", [(answer.lower(), answer) for answer in answers], ANSWER_WEIGHT, MAX_ANSWERS_COUNTED),
        ]
        for rule in self.rules:
            for where, texts, weight, cap in parts:
                hits = [match for match in (rule.search(lowered, text) for lowered, text in texts) if match][:cap]
                if hits:
                    points = rule.weight * weight * len(hits)
                    scores[rule.approach] += points
                    evidence.append(Evidence(rule.approach, rule.name, where, hits[0].group(0).strip(), points))
        self._score_links(topic, scores, evidence)
        notice = NOTICE_TITLE.search(topic.title)
        if notice:
            scores = {approach: score * NOTICE_FACTOR for approach, score in scores.items()}
            ignored.insert(0, f"notice: {notice.group(0)} (scores x{NOTICE_FACTOR})")
        return self._decide(topic.id, scores, evidence, _unique(ignored))

    def title_signal(self, title: str) -> bool:
        """Whether a title alone carries a remote-use phrase: picks topics worth fetching from a live forum."""
        text = _neutralise(title, [])
        lowered = text.lower()
        return any(rule.search(lowered, text) for rule in self.rules)

    def _score_links(self, topic: Topic, scores: dict[str, float], evidence: list[Evidence]) -> None:
        seen: set[tuple[str, str]] = set()
        for index, post in enumerate(topic.posts):
            weight = QUESTION_WEIGHT if index == 0 else ANSWER_WEIGHT
            for url in post.links():
                lowered = url.lower()
                for needle, approach, points in LINK_RULES:
                    if needle in lowered and (needle, approach) not in seen:
                        seen.add((needle, approach))
                        scores[approach] += points * weight
                        where = "question link" if index == 0 else "link"
                        evidence.append(Evidence(approach, "link", where, _short_url(url), points * weight))

    def _decide(self, topic_id: int, scores: dict[str, float], evidence: list[Evidence], ignored: list[str]) -> Classification:
        ranked = sorted(scores.items(), key=lambda item: -item[1])
        asked = {a: sum(e.points for e in evidence if e.approach == a and e.where in ("title", "question")) for a in scores}
        supported = [(a, score) for a, score in ranked if asked[a] >= ASKER_MINIMUM and _pointed(a, evidence)]
        if ranked[0][1] >= self.threshold and (not supported or supported[0][1] < self.threshold):
            best = ranked[0][0]
            if asked[best] < ASKER_MINIMUM:
                ignored.insert(0, f"only answers speak of {best} (the asker's words score {asked[best]:.2f} < {ASKER_MINIMUM})")
            else:
                ignored.insert(0, f"the asker only mentions {best} in passing (no title phrase, one specific phrase at most, unconfirmed by answers)")
        if supported and supported[0][1] >= self.threshold:
            best, best_score = supported[0]
            second_score = max((score for a, score in ranked if a != best), default=0.0)
            strength = 1 - math.exp(-best_score / self.threshold)
            margin = best_score / (best_score + second_score)
            confidence = round(min(0.99, strength * margin + 0.15), 2)
            return Classification(topic_id, best, confidence, scores, evidence, ignored)
        top = supported[0][1] if supported else 0.0
        confidence = round(max(0.5, 1 - 0.5 * top / self.threshold), 2)
        return Classification(topic_id, NOT_REMOTE, confidence, scores, evidence, ignored)


def _pointed(approach: str, evidence: list[Evidence]) -> bool:
    """Whether the asker points to the approach, not just mentions a word of it in passing.

    The asker's words (title and question) must hold a specific phrase of it, and more than that
    one phrase: two specific ones, or one in a topic whose title names the approach, or one with two
    more of the approach's phrases beside it, or one that an answer or an answer's link takes up. Generic words alone (a server, the cloud, a notebook, a
    browser) and a single specific word in a question about something else do not: on the whole
    forum those were most of the false remote calls (a Jupyter package in a pip log, a GitHub
    action that checks a dashboard, a Docker image of an AI server).
    """
    mine = [e for e in evidence if e.approach == approach]
    asked = {e.rule for e in mine if e.where in ("title", "question")}
    specific = asked - GENERIC_RULES
    in_title = any(e.where == "title" for e in mine)
    # An answer's phrase or link (not the asker's own link to the same thing) takes the approach up.
    taken_up = any(e.where in ("answers", "link") for e in mine)
    return len(specific) >= 2 or (len(specific) == 1 and (in_title or taken_up or len(asked - ECHO_RULES) >= 3))


def _neutralise(text: str, ignored: list[str]) -> str:
    lowered = text.lower()
    for name, pattern, keys in LOOKALIKES:
        if any(key in lowered for key in keys) and pattern.search(text):
            # A long match (a pip log line, a file path) is listed by the look-alike's name.
            ignored.extend(phrase if len(phrase) <= 40 else name for phrase in (m.group(0).strip() for m in pattern.finditer(text)))
            text = pattern.sub(" ", text)
    return text


def _unique(items: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item.lower(), None)
    return list(seen)


def _short_url(url: str) -> str:
    parts = urlsplit(url)
    return (parts.netloc + parts.path).rstrip("/")
