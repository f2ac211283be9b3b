"""Query model shared by the front ends (legacy XML, JSON, HTML) and the stores."""
