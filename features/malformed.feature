@needs-pbx-sim
@cap-malformed
Feature: Malformed CSTA
  Scenario: A broken CSTA body gets 400 and the session survives
    Given alice is signed in
    When alice sends a malformed CSTA request
    Then alice's request is refused with 400
    When alice dials bob
    Then bob's desk phone rings
