@cap-routing
Feature: Routing and trust at the Front End
  @smoke
  Scenario: The static route does not match the LineServerURI domain
    Given the static route matches elsewhere.example
    When alice tries to sign in
    Then alice is refused with 404
    And the Front End counted 1 refused route

  Scenario: A gateway that is not a trusted application gets no traffic
    Given the gateway is not a trusted application
    When alice tries to sign in
    Then alice is refused with 404
